"""The outcome of verifying one piece of evidence.

Verification is a pipeline of named steps (see ``STEPS``).  Each platform
verifier runs its steps in order and raises ``StepFailed(step, message)`` at the
first one that does not hold; ``verify()`` turns that into a failed ``Result``.
A ``Result`` is ``ok`` only when every step ran and passed: there is no partial
pass.  ``facts`` carries what was learned before the failure (useful for
diagnostics) but must not be trusted when ``ok`` is false.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Step names, in pipeline order.  Not every platform has every step.
STEPS: tuple[str, ...] = (
    "platform",  # unknown platform name
    "parse",  # bytes do not decode as the platform's container format
    "structure",  # decoded, but fields are missing, mistyped or out of bounds
    "chain",  # certificate chain / signing key does not lead to a pinned root
    "signature",  # the evidence signature (or a value it covers) does not verify
    "tcb",  # platform TCB / chip identity disagrees with the key certificate, or TCB status not acceptable
    "nonce",  # the caller's nonce or expected report data is not bound
    "freshness",  # timestamp in the future, too old, or token outside its validity
    "measurements",  # measurements not listed in the expected manifest
    "policy",  # debug / simulated evidence refused, or another policy rule
    "internal",  # a bug in the verifier itself (still a failed result, never an exception)
)


class StepFailed(Exception):
    """Raised inside platform verifiers; never escapes ``verify()``."""

    def __init__(self, step: str, message: str) -> None:
        assert step in STEPS, step
        super().__init__(f"{step}: {message}")
        self.step = step
        self.message = message


@dataclass
class Result:
    """``ok`` is true only if every step passed; otherwise ``failed_step`` names the first failure."""

    ok: bool
    platform: str
    failed_step: str | None = None
    message: str = ""
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "platform": self.platform,
            "failed_step": self.failed_step,
            "message": self.message,
            "facts": _jsonable(self.facts),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class Checks:
    """What the caller asked ``verify()`` to check; handed to each platform verifier.

    ``roots`` is already resolved (defaults applied).  ``report_data`` is the exact
    64-byte value expected in the platform's user-data / report-data field (for our own
    evidence: ``binding_digest(...)``).
    """

    now: Any  # datetime, timezone-aware UTC
    roots: Any  # roots.Roots
    nonce: bytes | None = None
    report_data: bytes | None = None
    max_age_seconds: float | None = None
    clock_skew_seconds: float = 300.0
