"""Trust anchors per platform (injectable; pinned defaults).

``Roots`` is what ``verify(..., roots=...)`` takes.  ``default_roots(platform)``
returns the pinned vendor material embedded in ``_pinned.py``; every embedded
certificate is checked against the fingerprint table below at import time, so an
edited constant fails loudly instead of silently widening trust.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509

from . import _pinned

#: SHA-256 fingerprints of the pinned anchors (the published values quoted in docs/attestation.md).
NITRO_ROOT_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
AMD_ARK_SHA256 = {
    "Milan": "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    "Genoa": "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    "Turin": "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
}
INTEL_SGX_ROOT_SHA256 = "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3"
GCP_ROOT_SHA256 = (
    "9bd5285f8fb18502a7947e621ffd470266f49fcd3b73e19a190f690ad32a7caf",  # tpm_ek_root_1
    "594759594b9b61524f6c8ef668f7177f7b9066bc0674f2f49fe9e052be78beb2",  # gcp_ek_ak_ca_root
)

_PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def _pem_der(pem: str) -> bytes:
    match = _PEM_RE.search(pem)
    assert match is not None
    return base64.b64decode("".join(match.group(1).split()))


def _check_pins() -> None:
    def fp(pems: Sequence[str]) -> list[str]:
        return [hashlib.sha256(_pem_der(p)).hexdigest() for p in pems]

    assert fp(_pinned.NITRO_ROOTS) == [NITRO_ROOT_SHA256], "pinned Nitro root changed"
    assert fp(_pinned.AMD_MILAN_ARK) == [AMD_ARK_SHA256["Milan"]], "pinned AMD Milan ARK changed"
    assert fp(_pinned.AMD_GENOA_ARK) == [AMD_ARK_SHA256["Genoa"]], "pinned AMD Genoa ARK changed"
    assert fp(_pinned.AMD_TURIN_ARK) == [AMD_ARK_SHA256["Turin"]], "pinned AMD Turin ARK changed"
    assert fp(_pinned.INTEL_SGX_ROOTS) == [INTEL_SGX_ROOT_SHA256], "pinned Intel SGX root changed"
    assert tuple(fp(_pinned.GCP_ROOTS)) == GCP_ROOT_SHA256, "pinned GCP roots changed"


_check_pins()


@dataclass(frozen=True)
class Roots:
    """Trust configuration for one platform.

    ``anchors``: pinned root certificates (a path must end at one of them).
    ``intermediates``: vendor CA certificates we may use to build a path even if the
    evidence does not carry them (AMD ASK/ASVK, TPM EK intermediates); they are not trusted by
    themselves.  ``jwks``: for ``azure``, allow-listed issuer URL -> JWKS document
    (``{"keys": [...]}``); a token's ``jku`` header is never followed.
    """

    anchors: tuple[x509.Certificate, ...] = ()
    intermediates: tuple[x509.Certificate, ...] = ()
    jwks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_pems(cls, anchors: Sequence[str | bytes], intermediates: Sequence[str | bytes] = ()) -> Roots:
        return cls(
            anchors=tuple(_load(p) for p in anchors),
            intermediates=tuple(_load(p) for p in intermediates),
        )


def _load(pem_or_der: str | bytes) -> x509.Certificate:
    data = pem_or_der.encode() if isinstance(pem_or_der, str) else pem_or_der
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def default_roots(platform: str) -> Roots:
    """Pinned vendor roots for ``platform`` (empty for platforms with no vendor PKI)."""
    if platform == "aws-nitro":
        return Roots.from_pems(_pinned.NITRO_ROOTS)
    if platform == "sev-snp":
        return Roots.from_pems(
            [*_pinned.AMD_MILAN_ARK, *_pinned.AMD_GENOA_ARK, *_pinned.AMD_TURIN_ARK],
            [*_pinned.AMD_MILAN_INTERMEDIATES, *_pinned.AMD_GENOA_INTERMEDIATES, *_pinned.AMD_TURIN_INTERMEDIATES],
        )
    if platform == "tdx":
        return Roots.from_pems(_pinned.INTEL_SGX_ROOTS)
    if platform == "gcp-vtpm":
        return Roots.from_pems(_pinned.GCP_ROOTS, _pinned.GCP_INTERMEDIATES)
    # azure: MAA signing keys rotate and must be fetched from an allow-listed issuer by the
    # caller (see docs/attestation.md); simulated: nothing is trusted.
    return Roots()
