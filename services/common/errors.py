"""The one seam where domain errors become gRPC status codes and the public error shape.

A wallet always receives ``{"error","message","details","request_id"}``
(docs/architecture.md §2).  How it gets there through Envoy: Envoy's gRPC-JSON
transcoder can only print a ``google.rpc.Status`` (``{"code","message",
"details"}``), so the handler also sends the finished public JSON as the
trailing-metadata entry ``x-error-body``; a small Lua filter in front of the
transcoder swaps the response body for it and drops the header
(services/gateway/envoy.yaml.tmpl).  gRPC callers get the same fields as an
``teeprover.v1.ErrorInfo`` detail in ``grpc-status-details-bin``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import any_pb2, struct_pb2
from google.rpc import status_pb2

from teeprover import errors as E
from teeprover.v1 import errors_pb2

log = logging.getLogger(__name__)

ERROR_BODY_KEY = "x-error-body"
HTTP_STATUS_KEY = "x-http-status"
MAX_BODY_HEADER = 6000  # keep the header well inside Envoy's response header limit


@dataclass(frozen=True)
class Mapping:
    code: grpc.StatusCode
    error: str  # the public "error" name
    http: int


# Most specific class first; every class in teeprover.errors must be covered
# (tests/unit/test_error_seam.py walks the hierarchy).
MAPPINGS: tuple[tuple[type[E.TeeProverError], Mapping], ...] = (
    (E.PayloadTooLarge, Mapping(grpc.StatusCode.INVALID_ARGUMENT, "PayloadTooLarge", 413)),
    (E.InvalidInput, Mapping(grpc.StatusCode.INVALID_ARGUMENT, "BadRequest", 400)),
    (E.Unauthenticated, Mapping(grpc.StatusCode.UNAUTHENTICATED, "Unauthorized", 401)),
    (E.NotFound, Mapping(grpc.StatusCode.NOT_FOUND, "NotFound", 404)),
    (E.Overloaded, Mapping(grpc.StatusCode.UNAVAILABLE, "ServiceUnavailable", 503)),
    (E.Unavailable, Mapping(grpc.StatusCode.UNAVAILABLE, "ServiceUnavailable", 503)),
    (E.JobTimeout, Mapping(grpc.StatusCode.DEADLINE_EXCEEDED, "Timeout", 504)),
    (E.Cancelled, Mapping(grpc.StatusCode.CANCELLED, "Cancelled", 499)),
    (E.InternalError, Mapping(grpc.StatusCode.INTERNAL, "InternalError", 500)),
)
_INTERNAL = Mapping(grpc.StatusCode.INTERNAL, "InternalError", 500)


def mapping_for(exc: BaseException) -> Mapping:
    for cls, mapping in MAPPINGS:
        if isinstance(exc, cls):
            return mapping
    return _INTERNAL


def public_body(exc: BaseException, request_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The public JSON error object for ``exc`` (never a traceback, never secrets)."""
    mapping = mapping_for(exc)
    if isinstance(exc, E.TeeProverError):
        message, details = exc.message, dict(exc.details)
    else:
        message, details = "internal error", {}
    body: dict[str, Any] = {"error": mapping.error, "message": message, "details": details, "request_id": request_id}
    # An error may carry extra top-level fields (e.g. /ready's pool state on 503).
    body.update(getattr(exc, "extra_fields", None) or {})
    if extra:
        body.update(extra)
    return body


def abort(
    context: grpc.ServicerContext, exc: BaseException, request_id: str, extra: dict[str, Any] | None = None
) -> None:
    """Finish the call with the status, trailers and public body for ``exc`` (raises, as grpc's abort does)."""
    mapping = mapping_for(exc)
    body = public_body(exc, request_id, extra)
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":"), default=str)
    if len(text) > MAX_BODY_HEADER:
        body["details"] = {"truncated": True}
        text = json.dumps(body, ensure_ascii=True, separators=(",", ":"), default=str)
    info = errors_pb2.ErrorInfo(error=body["error"], message=body["message"], request_id=request_id)
    details_struct = struct_pb2.Struct()
    details_struct.update(json.loads(json.dumps(body["details"], default=str)))
    info.details.CopyFrom(details_struct)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=mapping.code.value[0], message=body["message"], details=[detail])
    trailers: list[tuple[str, str | bytes]] = [
        (ERROR_BODY_KEY, text),
        # gRPC codes are coarser than HTTP (413 and 400 are both INVALID_ARGUMENT); the gateway's
        # Lua filter sets the HTTP status from this trailer.
        (HTTP_STATUS_KEY, str(mapping.http)),
        ("x-request-id", request_id),
        ("grpc-status-details-bin", status.SerializeToString()),
    ]
    retry_after = exc.retry_after if isinstance(exc, E.Overloaded | E.Unavailable) else None
    if retry_after is not None:
        trailers.append(("retry-after", str(retry_after)))
    context.set_trailing_metadata(tuple(trailers))
    context.abort(mapping.code, body["message"])
