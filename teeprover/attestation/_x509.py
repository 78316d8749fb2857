"""X.509 helpers shared by the platform verifiers: loading, pinning, path building.

We build and check paths ourselves instead of using ``cryptography.x509.verification``
because vendor PKIs (AMD's RSA-PSS ARK/ASK/VCEK with no serial-number hygiene, TPM EK
CAs with over-long names) do not meet the Web PKI profile that verifier enforces.  What
we check: each certificate is directly issued by the next (name chaining + signature,
including RSA-PSS), non-leaf certificates that carry basicConstraints are CAs, every
certificate is valid at the injected ``now``, and the path ends at a pinned anchor
(compared byte-for-byte, i.e. by fingerprint).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .result import StepFailed

MAX_CHAIN_DEPTH = 8


def load_der(der: bytes, what: str = "certificate") -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except Exception as exc:  # noqa: BLE001 - any decode failure is a structure failure
        raise StepFailed("structure", f"{what} is not a DER X.509 certificate: {exc}") from None


def load_pem_or_der(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lower-case hex."""
    return hashlib.sha256(der(cert)).hexdigest()


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except Exception:  # noqa: BLE001 - name mismatch, bad signature or unsupported algorithm
        return False
    return True


def _name(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()[:120] or "<empty subject>"
    except Exception:  # noqa: BLE001
        return "<unparsable subject>"


def _issuer(cert: x509.Certificate) -> str:
    # cryptography parses names lazily: a corrupt issuer only fails here.
    try:
        return cert.issuer.rfc4514_string()[:120]
    except Exception:  # noqa: BLE001
        return "<unparsable issuer>"


def build_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    """Return ``[leaf, ..., anchor]`` or raise ``StepFailed("chain", ...)``."""
    if not anchors:
        raise StepFailed("chain", "no pinned trust anchor configured for this platform")
    anchor_ders = {der(a) for a in anchors}
    pool = [c for c in intermediates if der(c) not in anchor_ders]

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        cur = path[-1]
        if der(cur) in anchor_ders:
            return path
        for anchor in anchors:
            if _issued_by(cur, anchor):
                return [*path, anchor]
        if len(path) >= MAX_CHAIN_DEPTH:
            return None
        for cand in pool:
            if any(cand is p for p in path):
                continue
            if _issued_by(cur, cand):
                found = extend([*path, cand])
                if found is not None:
                    return found
        return None

    path = extend([leaf])
    if path is None:
        raise StepFailed(
            "chain", f"no path from {_name(leaf)} to a pinned root (issuer {_issuer(leaf)})"
        )
    try:
        _check_path(path, now)
    except ValueError as exc:  # a field that only fails to parse when it is read
        raise StepFailed("chain", f"a certificate in the chain could not be parsed: {exc}"[:300]) from None
    return path


def _check_path(path: list[x509.Certificate], now: datetime) -> None:
    for i, cert in enumerate(path):
        if i > 0:
            try:
                bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            except x509.ExtensionNotFound:
                bc = None
            if bc is not None and not bc.ca:
                raise StepFailed("chain", f"{_name(cert)} issues certificates but is not a CA")
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise StepFailed(
                "chain",
                f"{_name(cert)} is not valid at {now.isoformat()} "
                f"(valid {cert.not_valid_before_utc.isoformat()}..{cert.not_valid_after_utc.isoformat()})",
            )
