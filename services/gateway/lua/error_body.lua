-- Replace the transcoder's google.rpc.Status JSON with the public error shape.
-- The Python error seam (services/common/errors.py) sends the finished JSON in
-- the trailer "x-error-body" and the HTTP status in "x-http-status" (gRPC codes
-- are coarser: 400 and 413 are both INVALID_ARGUMENT).  On an error-only gRPC
-- reply those trailers arrive with the response headers.  This filter swaps the
-- body, sets the status and drops both headers, so a wallet sees
-- {"error","message","details","request_id"} with the right status code.
function envoy_on_response(handle)
  local headers = handle:headers()
  local body = headers:get("x-error-body")
  if body == nil then
    return
  end
  local status = headers:get("x-http-status")
  if status ~= nil and string.match(status, "^[1-5]%d%d$") then
    headers:replace(":status", status)
  end
  headers:remove("x-http-status")
  headers:remove("x-error-body")
  headers:remove("grpc-status-details-bin")
  headers:replace("content-type", "application/json")
  handle:body(true):setBytes(body)
end
