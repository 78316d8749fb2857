"""Every domain error has exactly one mapping to a gRPC code, a public name and an HTTP status."""

from __future__ import annotations

import inspect

import grpc
import pytest

from services.common import errors as seam
from teeprover import errors as E


def _all_error_classes() -> list[type[E.TeeProverError]]:
    return [c for _, c in inspect.getmembers(E, inspect.isclass) if issubclass(c, E.TeeProverError)
            and c is not E.TeeProverError]


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_domain_error_is_mapped(cls: type[E.TeeProverError]) -> None:
    assert any(issubclass(cls, mapped) for mapped, _ in seam.MAPPINGS), f"{cls.__name__} has no mapping"


@pytest.mark.parametrize("exc,code,name,http", [
    (E.MalformedEncoding("x"), grpc.StatusCode.INVALID_ARGUMENT, "BadRequest", 400),
    (E.PayloadTooLarge("x"), grpc.StatusCode.INVALID_ARGUMENT, "PayloadTooLarge", 413),
    (E.Unauthenticated("x"), grpc.StatusCode.UNAUTHENTICATED, "Unauthorized", 401),
    (E.NotFound("x"), grpc.StatusCode.NOT_FOUND, "NotFound", 404),
    (E.Overloaded("x"), grpc.StatusCode.UNAVAILABLE, "ServiceUnavailable", 503),
    (E.JobTimeout("x"), grpc.StatusCode.DEADLINE_EXCEEDED, "Timeout", 504),
    (E.ProofVerificationFailed("x"), grpc.StatusCode.INTERNAL, "InternalError", 500),
    (RuntimeError("secret witness 42"), grpc.StatusCode.INTERNAL, "InternalError", 500),
])
def test_mapping(exc: BaseException, code: grpc.StatusCode, name: str, http: int) -> None:
    m = seam.mapping_for(exc)
    assert (m.code, m.error, m.http) == (code, name, http)


def test_unexpected_errors_never_leak_their_message() -> None:
    body = seam.public_body(RuntimeError("secret witness 42"), "rid-1")
    assert body == {"error": "InternalError", "message": "internal error", "details": {}, "request_id": "rid-1"}


def test_circuit_error_details_name_the_instruction() -> None:
    body = seam.public_body(E.CircuitError("bad", instruction=7, constraint=3), "rid")
    assert body["details"] == {"instruction": 7, "constraint": 3}
