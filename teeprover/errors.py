"""Domain errors of the TEE Prover library.

Core code raises these; exactly one seam (``services/common/errors.py``) maps
them to gRPC status codes and to the public JSON error shape.  Every class
below must have a mapping there (a test enforces it).

    TeeProverError
    ├── InvalidInput                 400 BadRequest        (INVALID_ARGUMENT)
    │   ├── MalformedEncoding        bytes that do not decode (CBOR, JSON, files)
    │   ├── CircuitError             a circuit that does not compile / is not satisfied
    │   ├── CircuitTooLarge          k above the supported maximum
    │   └── PayloadTooLarge          413 PayloadTooLarge   (body over the limit)
    ├── Unauthenticated              401 Unauthorized      (UNAUTHENTICATED)
    ├── NotFound                     404 NotFound          (NOT_FOUND)
    ├── Overloaded                   503 ServiceUnavailable (UNAVAILABLE, Retry-After)
    ├── Unavailable                  503 ServiceUnavailable (UNAVAILABLE, Retry-After when known)
    ├── JobTimeout                   504 Timeout           (DEADLINE_EXCEEDED)
    ├── Cancelled                    499                   (CANCELLED)
    └── InternalError                500 InternalError     (INTERNAL)
        └── ProofVerificationFailed  a proof we produced did not verify (never returned)
"""

from __future__ import annotations

from typing import Any


class TeeProverError(Exception):
    """Base class: ``message`` is safe to show to a caller; ``details`` is JSON-able."""

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class InvalidInput(TeeProverError):
    """The caller sent something we cannot accept."""


class MalformedEncoding(InvalidInput):
    """Bytes that do not decode as the documented format."""


class CircuitError(InvalidInput):
    """A circuit that does not compile, or a witness that does not satisfy it.

    ``instruction`` (index into the ZKIR instruction list) and ``constraint``
    (index into the R1CS) are set when known, and copied into ``details``.
    """

    def __init__(
        self,
        message: str,
        *,
        instruction: int | None = None,
        constraint: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if instruction is not None:
            merged["instruction"] = instruction
        if constraint is not None:
            merged["constraint"] = constraint
        super().__init__(message, details=merged)
        self.instruction = instruction
        self.constraint = constraint


class CircuitTooLarge(InvalidInput):
    """The circuit needs a domain larger than 2^24 (or than the configured maximum)."""


class PayloadTooLarge(InvalidInput):
    """A request body above the configured byte limit."""


class Unauthenticated(TeeProverError):
    """Missing or invalid API key."""


class NotFound(TeeProverError):
    """An unknown key location, parameter size or resource."""


class Overloaded(TeeProverError):
    """The job queue is full; the caller should retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int = 5, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class Unavailable(TeeProverError):
    """A dependency (parameter mirrors, a device, a worker, a key being set up) is not available right now.

    ``retry_after`` (seconds), when known, is sent to the caller as ``Retry-After``.
    """

    def __init__(self, message: str, *, retry_after: int | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after


class JobTimeout(TeeProverError):
    """A job ran past its deadline and was aborted."""


class Cancelled(TeeProverError):
    """The caller went away; the job was cancelled."""


class InternalError(TeeProverError):
    """A bug or an environment failure; the message must not leak secrets."""


class ProofVerificationFailed(InternalError):
    """A proof we produced failed our own verification; it is never returned."""
