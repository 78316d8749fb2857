"""The ``simulated`` platform: a real ES384 signature by an ephemeral key.  NOT SECURE.

Same container as an AWS Nitro document (COSE_Sign1 over a CBOR payload) so one verifier
path covers both, plus ``"debug": true`` and ``"platform": SIMULATED_PLATFORM_TEXT``.  The
signing certificate is self-signed and there is no cabundle; ``verify`` refuses these
documents unless ``allow_simulated=True``.  ``build_document`` is also what the fake NSM
in the tests uses.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from . import _cose
from .nitro import SIMULATED_PLATFORM_TEXT

PCR_COUNT = 16


def build_document(
    *,
    private_key: ec.EllipticCurvePrivateKey,
    certificate: bytes,
    cabundle: list[bytes],
    module_id: str,
    pcrs: dict[int, bytes],
    now: datetime,
    user_data: bytes | None,
    nonce: bytes | None,
    public_key: bytes | None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    payload: dict[str, Any] = {
        "module_id": module_id,
        "digest": "SHA384",
        "timestamp": int(now.timestamp() * 1000),
        "pcrs": pcrs,
        "certificate": certificate,
        "cabundle": cabundle,
        "public_key": public_key,
        "user_data": user_data,
        "nonce": nonce,
        **(extra or {}),
    }
    return _cose.sign_es384(cbor2.dumps(payload), private_key)


def self_signed_p384(
    common_name: str, now: datetime, lifetime: timedelta
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA384())
    )
    return key, cert


class SimulatedSigner:
    """Generates its P-384 key and self-signed certificate once, at construction."""

    def __init__(self, now: datetime | None = None, lifetime: timedelta = timedelta(days=30)) -> None:
        start = now or datetime.now(UTC)
        self.module_id = "simulated-" + os.urandom(8).hex()
        self._key, self.certificate = self_signed_p384(
            f"teeprover simulated {self.module_id} NOT SECURE", start, lifetime
        )

    def attest(self, *, user_data: bytes | None, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        return build_document(
            private_key=self._key,
            certificate=self.certificate.public_bytes(Encoding.DER),
            cabundle=[],
            module_id=self.module_id,
            pcrs={i: bytes(48) for i in range(PCR_COUNT)},
            now=now,
            user_data=user_data,
            nonce=nonce,
            public_key=public_key,
            extra={"debug": True, "platform": SIMULATED_PLATFORM_TEXT},
        )
