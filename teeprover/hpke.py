"""Confidential preimages: HPKE (RFC 9180) with the hybrid post-quantum KEM ML-KEM-768 + X25519.

A wallet that verified the attestation document (whose report data binds the
prover's HPKE public key, see docs/attestation.md) seals its ``/prove`` body to
that key, so neither the gateway nor the operator sees the witness; only the
prover inside the TEE opens it.  All primitives come from ``cryptography``
(``hazmat.primitives.hpke``); this module only fixes the suite and the wire form.

Public key bytes: ML-KEM-768 encapsulation key (1184 bytes) ‖ X25519 key (32 bytes).
Envelope: CBOR tag ``0x7E000003`` holding ``[1, kem, kdf, aead, ciphertext]``
(the suite's names as text, the ciphertext as ``cryptography`` returns it:
encapsulated key followed by the AEAD output).
"""

from __future__ import annotations

from dataclasses import dataclass

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from teeprover.errors import InvalidInput, MalformedEncoding

TAG_SEALED_REQUEST = 0x7E000003
VERSION = 1
SUITE_NAMES = ("MLKEM768_X25519", "HKDF_SHA256", "AES_256_GCM")
SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
INFO = b"teeprover/v1 prove request"
MLKEM_PUBLIC_BYTES = 1184
PUBLIC_KEY_BYTES = MLKEM_PUBLIC_BYTES + 32
MAX_ENVELOPE = 512 << 20


@dataclass(frozen=True)
class KeyPair:
    private: hpke.MLKEM768X25519PrivateKey
    public_bytes: bytes


def generate() -> KeyPair:
    """A fresh key pair from the OS RNG; the private half never leaves this process."""
    m = mlkem.MLKEM768PrivateKey.generate()
    x = x25519.X25519PrivateKey.generate()
    public = m.public_key().public_bytes_raw() + x.public_key().public_bytes_raw()
    return KeyPair(hpke.MLKEM768X25519PrivateKey(m, x), public)


def public_key_from_bytes(data: bytes) -> hpke.MLKEM768X25519PublicKey:
    if len(data) != PUBLIC_KEY_BYTES:
        raise InvalidInput(f"HPKE public key must be {PUBLIC_KEY_BYTES} bytes, not {len(data)}")
    try:
        m = mlkem.MLKEM768PublicKey.from_public_bytes(data[:MLKEM_PUBLIC_BYTES])
        x = x25519.X25519PublicKey.from_public_bytes(data[MLKEM_PUBLIC_BYTES:])
    except ValueError as exc:
        raise InvalidInput(f"not an ML-KEM-768 + X25519 public key: {exc}") from None
    return hpke.MLKEM768X25519PublicKey(m, x)


def seal(public_key: bytes, plaintext: bytes) -> bytes:
    """Encrypt a ``/prove`` body to the attested key; returns the CBOR envelope."""
    ciphertext = SUITE.encrypt(plaintext, public_key_from_bytes(public_key), info=INFO)
    return cbor2.dumps(cbor2.CBORTag(TAG_SEALED_REQUEST, [VERSION, *SUITE_NAMES, ciphertext]), canonical=True)


def is_sealed(body: bytes) -> bool:
    # Canonical CBOR of tag 0x7E000003: major type 6, 4-byte argument.
    return body[:5] == b"\xda" + TAG_SEALED_REQUEST.to_bytes(4, "big")


def open_sealed(keys: KeyPair, envelope: bytes) -> bytes:
    """Decrypt an envelope made by :func:`seal` for ``keys``; any failure is a 400, never a crash."""
    if len(envelope) > MAX_ENVELOPE:
        raise MalformedEncoding("sealed request is too large")
    try:
        obj = cbor2.loads(envelope)
    except Exception:  # noqa: BLE001 - cbor2 raises several types on garbage
        raise MalformedEncoding("sealed request is not CBOR") from None
    if not (isinstance(obj, cbor2.CBORTag) and obj.tag == TAG_SEALED_REQUEST and isinstance(obj.value, (list, tuple))
            and len(obj.value) == 5):
        raise MalformedEncoding("sealed request must be tag 0x7E000003 [1, kem, kdf, aead, ciphertext]")
    version, kem, kdf, aead, ciphertext = obj.value
    if version != VERSION or (kem, kdf, aead) != SUITE_NAMES or not isinstance(ciphertext, bytes):
        raise MalformedEncoding(f"unsupported sealed request (version 1 with suite {'/'.join(SUITE_NAMES)})")
    try:
        return SUITE.decrypt(ciphertext, keys.private, info=INFO)
    except (InvalidTag, ValueError):
        raise InvalidInput(
            "sealed request does not open with this prover's key (sealed to another prover or tampered); "
            "fetch /attestation again and re-encrypt"
        ) from None
