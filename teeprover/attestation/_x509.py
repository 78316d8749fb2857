"""X.509 helpers shared by the platform verifiers: loading, pinning, path building.

We build and check paths ourselves instead of using ``cryptography.x509.verification``
because vendor PKIs (AMD's RSA-PSS ARK/ASK/VCEK with no serial-number hygiene, TPM EK
CAs with over-long names) do not meet the Web PKI profile that verifier enforces.  What
we check: each certificate is directly issued by the next (name chaining + signature,
including RSA-PSS); every certificate that issues another in the path (each intermediate
and the pinned anchor) is a CA by RFC 5280: basicConstraints present with cA=TRUE
(§4.2.1.9), its pathLenConstraint not exceeded by the non-self-issued intermediates below
it (§6.1.4 (l)/(m)), and keyCertSign asserted when it carries keyUsage (§4.2.1.3,
§6.1.4 (n)); every certificate is valid at the injected ``now``; and the path ends at a
pinned anchor (compared byte-for-byte, i.e. by fingerprint).

No vendor exception is needed: every issuing certificate of the real chains we verify
(AWS Nitro root and cabundle CAs, AMD ARK/ASK/ASVK for Milan, Genoa and Turin, Google's
TPM EK and EK/AK CAs, and the Intel SGX root and PCK Platform CA that dcap-qvl checks)
carries a critical basicConstraints with cA=TRUE and a keyUsage with keyCertSign, and
their pathLenConstraints hold for their real paths.  Only end-entity certificates (AMD
VCEK/VLEK) lack basicConstraints, and an end entity never issues in a path.
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


def _ca_problem(issuer: x509.Certificate, below: Sequence[x509.Certificate]) -> str | None:
    """Why ``issuer`` may not sign ``below[-1]`` (None when it may).

    ``below`` is the path from the leaf up to the certificate ``issuer`` signs; its
    non-self-issued certificates other than the leaf are the intermediates pathLenConstraint counts.
    """
    name = _name(issuer)
    try:  # extensions are parsed when first read; a malformed or duplicated one fails here
        extensions = issuer.extensions
    except (ValueError, x509.DuplicateExtension) as exc:
        return f"{name} has extensions that could not be parsed: {exc}"[:300]
    try:
        bc = extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return f"{name} issues certificates but has no basicConstraints extension (not a CA)"
    if not bc.ca:
        return f"{name} issues certificates but is not a CA"
    if bc.path_length is not None:
        intermediates = sum(1 for c in below[1:] if c.issuer != c.subject)
        if intermediates > bc.path_length:
            return (
                f"{name} allows {bc.path_length} intermediate CA certificate(s) below it "
                f"(pathLenConstraint) but the path has {intermediates}"
            )
    try:
        key_usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if not key_usage.key_cert_sign:
        return f"{name} issues certificates but its keyUsage lacks keyCertSign"
    return None


def build_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: datetime,
) -> list[x509.Certificate]:
    """Return ``[leaf, ..., anchor]`` or raise ``StepFailed("chain", ...)``.

    The search only steps to an issuer that may issue at that place in the path (a CA,
    see ``_ca_problem``), so a valid path is found even when a bad one exists too; when
    no path is found and a signing issuer was refused, that refusal is the error.
    """
    if not anchors:
        raise StepFailed("chain", "no pinned trust anchor configured for this platform")
    anchor_ders = {der(a) for a in anchors}
    pool = [c for c in intermediates if der(c) not in anchor_ders]
    refused: list[str] = []

    def may_issue(cand: x509.Certificate, path: list[x509.Certificate]) -> bool:
        if not _issued_by(path[-1], cand):
            return False
        problem = _ca_problem(cand, path)
        if problem is not None:
            refused.append(problem)
            return False
        return True

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        cur = path[-1]
        if der(cur) in anchor_ders:
            return path
        for anchor in anchors:
            if may_issue(anchor, path):
                return [*path, anchor]
        if len(path) >= MAX_CHAIN_DEPTH:
            return None
        for cand in pool:
            if any(cand is p for p in path):
                continue
            if may_issue(cand, path):
                found = extend([*path, cand])
                if found is not None:
                    return found
        return None

    try:
        path = extend([leaf])
        if path is None:
            if refused:
                raise StepFailed("chain", refused[0])
            raise StepFailed(
                "chain", f"no path from {_name(leaf)} to a pinned root (issuer {_issuer(leaf)})"
            )
        _check_validity(path, now)
    except ValueError as exc:  # a field that only fails to parse when it is read
        raise StepFailed("chain", f"a certificate in the chain could not be parsed: {exc}"[:300]) from None
    return path


def _check_validity(path: list[x509.Certificate], now: datetime) -> None:
    for cert in path:
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise StepFailed(
                "chain",
                f"{_name(cert)} is not valid at {now.isoformat()} "
                f"(valid {cert.not_valid_before_utc.isoformat()}..{cert.not_valid_after_utc.isoformat()})",
            )
