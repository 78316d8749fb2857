"""The single verification entry point: ``verify(evidence, *, platform, ...) -> Result``.

Pipeline (docs/architecture.md §5): parse -> structure and size bounds -> chain to a pinned
root -> signature -> [tcb] -> nonce / freshness (platform verifiers), then measurements
against the expected manifest -> policy (here, common to all platforms).  The first
failing step ends verification with a failed ``Result``; no exception escapes for any
input bytes.  Warnings raised by ``cryptography`` while parsing vendor certificates
(e.g. AMD's serial number 0) are recorded in ``facts["warnings"]`` instead of escaping.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from .manifest import Manifest
from .result import Checks, Result, StepFailed
from .roots import Roots, default_roots

PLATFORMS = ("aws-nitro", "sev-snp", "tdx", "gcp-vtpm", "azure", "simulated")
MAX_EVIDENCE_BYTES = 256 * 1024

Verifier = Callable[[bytes, Checks, dict[str, Any]], None]


def _verifier(platform: str) -> Verifier:
    # Imported lazily so that one platform's optional dependency (dcap-qvl for tdx)
    # cannot break the others.
    if platform == "aws-nitro":
        from .nitro import verify_nitro

        return verify_nitro
    if platform == "simulated":
        from .nitro import verify_simulated

        return verify_simulated
    if platform == "sev-snp":
        from .snp import verify_snp

        return verify_snp
    if platform == "azure":
        from .azure import verify_azure

        return verify_azure
    if platform == "gcp-vtpm":
        from .gcp import verify_gcp

        return verify_gcp
    if platform == "tdx":
        from .tdx import verify_tdx

        return verify_tdx
    raise StepFailed("platform", f"unknown platform {platform!r:.40}; expected one of {', '.join(PLATFORMS)}")


def verify(
    evidence: bytes,
    *,
    platform: str,
    roots: Roots | None = None,
    now: datetime,
    nonce: bytes | None = None,
    expected: Manifest | None = None,
    allow_simulated: bool = False,
    allow_debug: bool = False,
    report_data: bytes | None = None,
    max_age: timedelta | None = None,
) -> Result:
    """Verify ``evidence`` for ``platform`` at instant ``now``.

    ``nonce``: on aws-nitro / simulated the document's ``nonce`` field, on gcp-vtpm the quote's
    extraData, on azure the runtime client payload nonce, on sev-snp / tdx the report data
    (the nonce zero-padded to 64 bytes) unless ``report_data`` is given.
    ``report_data``: the exact 64-byte user-data / report-data expected, e.g.
    ``binding_digest(...)`` for evidence produced by ``collect``.
    ``expected``: a loaded (signature-checked) manifest; without it the measurement step only
    reports the measurements.  ``max_age``: reject documents whose own timestamp is older.
    """
    facts: dict[str, Any] = {}
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _run(
                evidence,
                platform,
                roots,
                now,
                nonce,
                expected,
                allow_simulated,
                allow_debug,
                report_data,
                max_age,
                facts,
            )
        if caught:
            facts["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    except StepFailed as failure:
        return Result(ok=False, platform=str(platform), failed_step=failure.step, message=failure.message, facts=facts)
    except Exception as exc:  # noqa: BLE001 - fail closed: a verifier bug is a failed result, never a pass
        return Result(
            ok=False,
            platform=str(platform),
            failed_step="internal",
            message=f"{type(exc).__name__}: {exc}"[:300],
            facts=facts,
        )
    return Result(ok=True, platform=platform, facts=facts)


def _run(
    evidence: Any,
    platform: str,
    roots: Roots | None,
    now: datetime,
    nonce: bytes | None,
    expected: Manifest | None,
    allow_simulated: bool,
    allow_debug: bool,
    report_data: bytes | None,
    max_age: timedelta | None,
    facts: dict[str, Any],
) -> None:
    verifier = _verifier(platform)
    if not isinstance(now, datetime) or now.tzinfo is None:
        raise StepFailed("platform", "now must be a timezone-aware datetime")
    if not isinstance(evidence, (bytes, bytearray, memoryview)):
        raise StepFailed("parse", "evidence must be bytes")
    evidence = bytes(evidence)
    if not evidence:
        raise StepFailed("structure", "evidence is empty")
    if len(evidence) > MAX_EVIDENCE_BYTES:
        raise StepFailed("structure", f"evidence is {len(evidence)} bytes, limit {MAX_EVIDENCE_BYTES}")
    if nonce is not None and not 1 <= len(nonce) <= 64:
        raise StepFailed("nonce", "nonce must be 1..64 bytes")
    if report_data is not None and len(report_data) != 64:
        raise StepFailed("nonce", "report_data must be 64 bytes")
    checks = Checks(
        now=now.astimezone(UTC),
        roots=roots if roots is not None else default_roots(platform),
        nonce=nonce,
        report_data=report_data,
        max_age_seconds=max_age.total_seconds() if max_age is not None else None,
    )
    verifier(evidence, checks, facts)

    measurements: dict[str, str] = facts.get("measurements", {})
    if expected is not None:
        matched = expected.match(platform, measurements)
        if matched is None:
            raise StepFailed(
                "measurements",
                f"no {platform} reference value in the manifest of build {expected.git_commit[:12]} matches",
            )
        facts["manifest_match"] = {
            "git_commit": expected.git_commit,
            "image_digest": expected.image_digest,
            "reference": matched,
        }

    if facts.get("simulated") and not allow_simulated:
        raise StepFailed("policy", "simulated evidence is NOT SECURE and is refused unless allow_simulated is set")
    if facts.get("debug") and not facts.get("simulated") and not allow_debug:
        raise StepFailed("policy", f"debug-mode {platform} evidence is refused by the production policy")
    for violation in facts.get("policy_violations", []):
        raise StepFailed("policy", violation)
