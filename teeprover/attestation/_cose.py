"""COSE_Sign1 (RFC 9052) with ES384, as used by the AWS Nitro NSM and our simulated provider.

Only what attestation needs: untagged or tag-18 ``[protected, unprotected, payload, signature]``,
protected header ``{1: -35}``, a 96-byte ``r || s`` signature over
``["Signature1", protected, b"", payload]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ._cbor import loads_strict
from .result import StepFailed

ES384 = -35
PROTECTED_ES384 = cbor2.dumps({1: ES384})


@dataclass(frozen=True)
class CoseSign1:
    protected: bytes
    unprotected: dict[Any, Any]
    payload: bytes
    signature: bytes


def parse(data: bytes) -> CoseSign1:
    value = loads_strict(data, "COSE_Sign1")
    if isinstance(value, cbor2.CBORTag):
        if value.tag != 18:
            raise StepFailed("parse", f"unexpected CBOR tag {value.tag} (COSE_Sign1 is 18)")
        value = value.value
    # Inside a tag cbor2 decodes arrays as tuples and maps as its (immutable) frozendict.
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise StepFailed("parse", "COSE_Sign1 must be an array of 4")
    protected, unprotected, payload, signature = value
    if not isinstance(protected, bytes) or not isinstance(unprotected, Mapping):
        raise StepFailed("parse", "COSE_Sign1 headers have the wrong types")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise StepFailed("parse", "COSE_Sign1 payload and signature must be byte strings")
    return CoseSign1(protected, dict(unprotected), payload, signature)


def check_es384_header(doc: CoseSign1) -> None:
    header = loads_strict(doc.protected, "COSE protected header") if doc.protected else {}
    if not isinstance(header, dict) or header.get(1) != ES384:
        raise StepFailed("structure", f"COSE algorithm must be ES384 (-35), got {header!r:.60}")
    if len(doc.signature) != 96:
        raise StepFailed("structure", f"ES384 signature must be 96 bytes, got {len(doc.signature)}")


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected, b"", payload])


def verify_es384(doc: CoseSign1, public_key: Any) -> None:
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP384R1):
        raise StepFailed("signature", "signing certificate key is not ECDSA P-384")
    r = int.from_bytes(doc.signature[:48], "big")
    s = int.from_bytes(doc.signature[48:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s), sig_structure(doc.protected, doc.payload), ec.ECDSA(hashes.SHA384())
        )
    except InvalidSignature:
        raise StepFailed("signature", "COSE_Sign1 ES384 signature does not verify") from None


def sign_es384(payload: bytes, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """Untagged COSE_Sign1 over ``payload`` (what the NSM emits)."""
    der_sig = private_key.sign(sig_structure(PROTECTED_ES384, payload), ec.ECDSA(hashes.SHA384()))
    r, s = decode_dss_signature(der_sig)
    return cbor2.dumps([PROTECTED_ES384, {}, payload, r.to_bytes(48, "big") + s.to_bytes(48, "big")])
