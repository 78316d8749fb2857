-- One error shape on every error reply, whoever answers (docs/gateway.md).
--
-- 1. Errors from the services: the Python error seam (services/common/errors.py)
--    sends the finished JSON in the trailer "x-error-body" and the HTTP status in
--    "x-http-status" (gRPC codes are coarser: 400 and 413 are both
--    INVALID_ARGUMENT).  On an error-only gRPC reply those trailers arrive with
--    the response headers.  The body is swapped for it, the status set and both
--    headers dropped.
-- 2. Envoy's own replies (local_reply_config in render.py, marked with the header
--    "x-teeprover-local-reply"): Envoy prints their JSON with sorted keys; they are
--    rewritten in the services' key order {"error","message","details","request_id"},
--    and the transcoder's "Could not find field \"foo\" in the type ..." for an
--    unknown query parameter becomes a message naming the parameter and the route
--    (from the route's metadata, set by render.py).
local function services_error(handle, headers)
  local body = headers:get("x-error-body")
  if body == nil then
    return false
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
  return true
end

local function local_reply(handle, headers)
  if headers:get("x-teeprover-local-reply") == nil then
    return
  end
  headers:remove("x-teeprover-local-reply")
  local buffered = handle:body(true)
  local raw = buffered:getBytes(0, buffered:length())
  -- Keys are sorted and their values JSON-escaped, so ',"error":' and ',"request_id":' occur once.
  local details, err, message, rid = string.match(raw, '^{"details":(.*),"error":(".-"),"message":(.*),"request_id":(.*)}%s*$')
  if details == nil then
    return
  end
  local field = string.match(message, '^"Could not find field \\"(.-)\\" in the type ')
  if field ~= nil then
    local meta = handle:metadata()
    local route = meta:get("route")
    local query = meta:get("query")
    if route ~= nil then
      local takes = "no query parameters"
      if query ~= nil and query ~= "" then
        takes = "only " .. query
      end
      message = '"unknown query parameter \\"' .. field .. '\\" on ' .. route .. ' (it takes ' .. takes .. ')"'
    else
      message = '"unknown query parameter \\"' .. field .. '\\""'
    end
  end
  buffered:setBytes('{"error":' .. err .. ',"message":' .. message .. ',"details":' .. details
    .. ',"request_id":' .. rid .. '}')
end

function envoy_on_response(handle)
  local headers = handle:headers()
  if not services_error(handle, headers) then
    local_reply(handle, headers)
  end
end
