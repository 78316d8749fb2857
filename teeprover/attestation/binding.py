"""What every document binds: SHA-512 over a canonical CBOR map (docs/attestation.md, "Binding").

    binding = SHA-512( CBOR_det({ "nonce": bstr / null,
                                  "timestamp": uint (Unix time, milliseconds),
                                  "hpke_public_key": bstr / null,
                                  "tls_spki_sha256": bstr .size 32 / null }) )

CBOR_det is RFC 8949 §4.2.1 core deterministic encoding: definite lengths, shortest
integer forms, map keys sorted by their encoded bytes.  For these short text keys that is
the order nonce, timestamp, hpke_public_key, tls_spki_sha256 (cbor2 ``canonical=True``
gives the same order; a test pins the exact bytes).  The 64-byte digest is the Nitro
``user_data``, the SEV-SNP / TDX ``report_data`` and the simulated ``user_data``.
"""

from __future__ import annotations

import hashlib

import cbor2

from ..errors import InvalidInput

MAX_NONCE_BYTES = 64


def binding_map(
    *, nonce: bytes | None, tls_spki_sha256: bytes | None, hpke_public_key: bytes | None, timestamp_ms: int
) -> dict[str, bytes | int | None]:
    if nonce is not None and len(nonce) > MAX_NONCE_BYTES:
        raise InvalidInput(f"nonce must be at most {MAX_NONCE_BYTES} bytes")
    if tls_spki_sha256 is not None and len(tls_spki_sha256) != 32:
        raise InvalidInput("tls_spki_sha256 must be 32 bytes")
    if hpke_public_key is not None and not 1 <= len(hpke_public_key) <= 4096:
        raise InvalidInput("hpke_public_key must be 1..4096 bytes")
    if not isinstance(timestamp_ms, int) or isinstance(timestamp_ms, bool) or not 0 <= timestamp_ms < 2**63:
        raise InvalidInput("timestamp must be a non-negative integer of milliseconds")
    return {
        "nonce": nonce,
        "timestamp": timestamp_ms,
        "hpke_public_key": hpke_public_key,
        "tls_spki_sha256": tls_spki_sha256,
    }


def binding_bytes(
    *, nonce: bytes | None, tls_spki_sha256: bytes | None, hpke_public_key: bytes | None, timestamp_ms: int
) -> bytes:
    """The canonical CBOR encoding that is hashed."""
    return cbor2.dumps(
        binding_map(
            nonce=nonce, tls_spki_sha256=tls_spki_sha256, hpke_public_key=hpke_public_key, timestamp_ms=timestamp_ms
        ),
        canonical=True,
    )


def binding_digest(
    *, nonce: bytes | None, tls_spki_sha256: bytes | None, hpke_public_key: bytes | None, timestamp_ms: int
) -> bytes:
    """SHA-512 of ``binding_bytes(...)``: 64 bytes for user_data / report_data."""
    return hashlib.sha512(
        binding_bytes(
            nonce=nonce, tls_spki_sha256=tls_spki_sha256, hpke_public_key=hpke_public_key, timestamp_ms=timestamp_ms
        )
    ).digest()
