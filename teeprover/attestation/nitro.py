"""AWS Nitro Enclaves attestation documents (and our ``simulated`` documents, same container).

Document = COSE_Sign1/ES384 whose payload is the CBOR map described in AWS's
``attestation_process.md``: module_id, digest, timestamp (ms), pcrs, certificate,
cabundle (root first), and optional public_key / user_data / nonce.

Deviations from AWS's text, deliberate and matching real NSM output:
- public_key / user_data / nonce of up to 1024 bytes are accepted (the NSM signs 1024-byte
  fields although the doc says 512);
- a CBOR ``null`` in those fields means "absent" (real documents contain it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from . import _cose, _x509
from ._cbor import loads_strict
from .result import Checks, StepFailed

MAX_DOCUMENT_BYTES = 32 * 1024
MAX_USER_FIELD_BYTES = 1024
MAX_CABUNDLE = 8
PCR_LENGTHS = (32, 48, 64)
SIMULATED_PLATFORM_TEXT = "simulated: NOT SECURE (ephemeral key, no hardware root of trust)"


def _payload(evidence: bytes) -> tuple[_cose.CoseSign1, dict[Any, Any]]:
    if len(evidence) > MAX_DOCUMENT_BYTES:
        raise StepFailed("structure", f"document is {len(evidence)} bytes, limit {MAX_DOCUMENT_BYTES}")
    doc = _cose.parse(evidence)
    payload = loads_strict(doc.payload, "attestation payload")
    if not isinstance(payload, dict):
        raise StepFailed("parse", "attestation payload is not a CBOR map")
    return doc, payload


def _structure(doc: _cose.CoseSign1, payload: dict[Any, Any], facts: dict[str, Any], *, simulated: bool) -> None:
    _cose.check_es384_header(doc)

    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        value = payload.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise StepFailed("structure", f"field {key!r} missing or not {getattr(kind, '__name__', kind)}")
        return value

    module_id = need("module_id", str)
    if not module_id:
        raise StepFailed("structure", "module_id is empty")
    digest = need("digest", str)
    if digest != "SHA384":
        raise StepFailed("structure", f"digest must be SHA384, got {digest!r:.20}")
    timestamp = need("timestamp", int)
    # Up to 9999-12-31 (datetime's range); a real NSM never signs anything near it.
    if not 0 < timestamp < 253402300800000:
        raise StepFailed("structure", "timestamp out of range")
    pcrs = need("pcrs", dict)
    if not 1 <= len(pcrs) <= 32:
        raise StepFailed("structure", "pcrs must have 1..32 entries")
    for index, value in pcrs.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 32:
            raise StepFailed("structure", f"PCR index {index!r:.20} out of range")
        if not isinstance(value, bytes) or len(value) not in PCR_LENGTHS:
            raise StepFailed("structure", f"PCR{index} must be 32, 48 or 64 bytes")
    need("certificate", bytes)
    cabundle = need("cabundle", list)
    if simulated:
        if cabundle:
            raise StepFailed("structure", "simulated documents carry no cabundle")
    elif not 1 <= len(cabundle) <= MAX_CABUNDLE or not all(isinstance(c, bytes) for c in cabundle):
        raise StepFailed("structure", f"cabundle must be 1..{MAX_CABUNDLE} byte strings")
    optional: dict[str, bytes | None] = {}
    for key in ("public_key", "user_data", "nonce"):
        value = payload.get(key)
        if value is not None and (not isinstance(value, bytes) or len(value) > MAX_USER_FIELD_BYTES):
            raise StepFailed("structure", f"{key} must be null or at most {MAX_USER_FIELD_BYTES} bytes")
        optional[key] = value
    if simulated and (payload.get("debug") is not True or payload.get("platform") != SIMULATED_PLATFORM_TEXT):
        raise StepFailed("structure", "simulated documents must say debug=true and NOT SECURE")

    facts.update(
        module_id=module_id,
        digest=digest,
        timestamp_ms=timestamp,
        timestamp=datetime.fromtimestamp(timestamp / 1000, tz=UTC).isoformat().replace("+00:00", "Z"),
        pcrs={i: pcrs[i].hex() for i in sorted(pcrs)},
        measurements={f"pcr{i}": pcrs[i].hex() for i in sorted(pcrs)},
        public_key=optional["public_key"],
        user_data=optional["user_data"],
        report_data=optional["user_data"],
        nonce=optional["nonce"],
        cabundle_len=len(cabundle),
    )
    if simulated:
        facts.update(debug=True, simulated=True, platform_text=payload["platform"])
    else:
        # PCR0..2 all zero is how the NSM marks an enclave started in debug mode.
        facts["debug"] = all(not any(pcrs.get(i, b"\0")) for i in (0, 1, 2))


def _chain(payload: dict[Any, Any], checks: Checks, facts: dict[str, Any], *, simulated: bool) -> x509.Certificate:
    leaf = _x509.load_der(payload["certificate"], "signing certificate")
    if simulated:
        # No hardware root: the document's self-signed certificate is its own anchor.
        # The policy step refuses the result unless the caller allowed simulated evidence.
        path = _x509.build_chain(leaf, [], [leaf], checks.now)
    else:
        bundle = [_x509.load_der(c, f"cabundle[{i}]") for i, c in enumerate(payload["cabundle"])]
        path = _x509.build_chain(leaf, bundle, checks.roots.anchors, checks.now)
    facts["chain"] = [c.subject.rfc4514_string() for c in path]
    facts["root_sha256"] = _x509.fingerprint(path[-1])
    return leaf


def _nonce_and_freshness(checks: Checks, facts: dict[str, Any]) -> None:
    if checks.nonce is not None and facts["nonce"] != checks.nonce:
        raise StepFailed("nonce", "document nonce differs from the expected nonce")
    if checks.report_data is not None and facts["user_data"] != checks.report_data:
        raise StepFailed("nonce", "document user_data differs from the expected binding")
    issued = facts["timestamp_ms"] / 1000
    now = checks.now.timestamp()
    if issued > now + checks.clock_skew_seconds:
        raise StepFailed("freshness", f"document timestamp {facts['timestamp']} is in the future")
    if checks.max_age_seconds is not None and now - issued > checks.max_age_seconds:
        raise StepFailed(
            "freshness", f"document timestamp {facts['timestamp']} is older than {checks.max_age_seconds:.0f} s"
        )


def verify_document(evidence: bytes, checks: Checks, facts: dict[str, Any], *, simulated: bool = False) -> None:
    doc, payload = _payload(evidence)
    _structure(doc, payload, facts, simulated=simulated)
    leaf = _chain(payload, checks, facts, simulated=simulated)
    _cose.verify_es384(doc, leaf.public_key())
    _nonce_and_freshness(checks, facts)


def verify_nitro(evidence: bytes, checks: Checks, facts: dict[str, Any]) -> None:
    verify_document(evidence, checks, facts, simulated=False)


def verify_simulated(evidence: bytes, checks: Checks, facts: dict[str, Any]) -> None:
    verify_document(evidence, checks, facts, simulated=True)
