"""The Nitro / simulated document rules (teeprover/attestation/nitro.py, _cose.py), one broken rule at a time.

Each document is a real COSE_Sign1 signed by a fresh P-384 key, exactly as the simulated TEE and the fake NSM
build them; one field is changed before signing, so the verifier must name the rule (step and message) rather
than fail later at the signature or the chain.  The valid document is checked to pass first, so each "no" is
paired with its "yes".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from teeprover.attestation import _cose, verify
from teeprover.attestation.nitro import SIMULATED_PLATFORM_TEXT
from teeprover.attestation.simulated import self_signed_p384

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
KEY, CERT = self_signed_p384("nitro rules test", NOW, timedelta(days=1))
CERT_DER = CERT.public_bytes(Encoding.DER)


def _payload(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "module_id": "i-0123-enc0123", "digest": "SHA384", "timestamp": int(NOW.timestamp() * 1000),
        "pcrs": {i: bytes(48) for i in range(16)}, "certificate": CERT_DER, "cabundle": [],
        "public_key": None, "user_data": b"u" * 64, "nonce": b"n" * 32,
        "debug": True, "platform": SIMULATED_PLATFORM_TEXT,
    }
    for key, value in changes.items():
        if value is _DROP:
            del payload[key]
        else:
            payload[key] = value
    return payload


_DROP = object()


def _doc(**changes: Any) -> bytes:
    return _cose.sign_es384(cbor2.dumps(_payload(**changes)), KEY)


def _check(evidence: bytes, platform: str = "simulated", **kw: Any) -> tuple[str | None, str]:
    result = verify(evidence, platform=platform, now=NOW, allow_simulated=True, **kw)
    return result.failed_step, result.message


def test_the_unchanged_document_verifies_with_its_nonce_and_user_data() -> None:
    assert _check(_doc(), nonce=b"n" * 32, report_data=b"u" * 64) == (None, "")


@pytest.mark.parametrize(("changes", "message"), [
    ({"module_id": ""}, "module_id is empty"),
    ({"module_id": 7}, "field 'module_id' missing or not str"),
    ({"digest": "SHA256"}, "digest must be SHA384, got 'SHA256'"),
    ({"timestamp": _DROP}, "field 'timestamp' missing or not int"),
    ({"timestamp": True}, "field 'timestamp' missing or not int"),
    ({"timestamp": 0}, "timestamp out of range"),
    ({"timestamp": 253402300800000}, "timestamp out of range"),
    ({"pcrs": {}}, "pcrs must have 1..32 entries"),
    ({"pcrs": {i: bytes(48) for i in range(33)}}, "pcrs must have 1..32 entries"),
    ({"pcrs": {32: bytes(48)}}, "PCR index 32 out of range"),
    ({"pcrs": {"0": bytes(48)}}, "PCR index '0' out of range"),
    ({"pcrs": {0: bytes(20)}}, "PCR0 must be 32, 48 or 64 bytes"),
    ({"certificate": "PEM text"}, "field 'certificate' missing or not bytes"),
    ({"cabundle": [CERT_DER]}, "simulated documents carry no cabundle"),
    ({"user_data": b"u" * 1025}, "user_data must be null or at most 1024 bytes"),
    ({"nonce": "nonce"}, "nonce must be null or at most 1024 bytes"),
    ({"debug": False}, "simulated documents must say debug=true and NOT SECURE"),
    ({"platform": "aws-nitro"}, "simulated documents must say debug=true and NOT SECURE"),
])
def test_each_broken_payload_rule_fails_structure_by_name(changes: dict[str, Any], message: str) -> None:
    assert _check(_doc(**changes)) == ("structure", message)


def test_a_nitro_document_needs_a_cabundle() -> None:
    step, message = _check(_doc(), platform="aws-nitro")
    assert (step, message) == ("structure", "cabundle must be 1..8 byte strings")
    step, _ = _check(_doc(cabundle=["not bytes"]), platform="aws-nitro")
    assert step == "structure"


def _cose_array(protected: Any = None, unprotected: Any = None, payload: Any = None, signature: Any = None) -> list:
    good = cbor2.loads(_doc())
    values = [protected, unprotected, payload, signature]
    return [good[i] if v is None else v for i, v in enumerate(values)]


@pytest.mark.parametrize(("evidence", "step", "message"), [
    # Regression: the tagged form (RFC 9052 tag 18) was refused as "must be an array of 4", because cbor2
    # decodes a tagged array as a tuple.
    (cbor2.dumps(cbor2.CBORTag(18, _cose_array())), None, ""),
    (cbor2.dumps(cbor2.CBORTag(18, _cose_array(unprotected={4: b"kid"}))), None, ""),
    (cbor2.dumps(cbor2.CBORTag(98, _cose_array())), "parse", "unexpected CBOR tag 98 (COSE_Sign1 is 18)"),
    (cbor2.dumps(_cose_array()[:3]), "parse", "COSE_Sign1 must be an array of 4"),
    (cbor2.dumps({"a": 1}), "parse", "COSE_Sign1 must be an array of 4"),
    (cbor2.dumps(_cose_array(unprotected=[])), "parse", "COSE_Sign1 headers have the wrong types"),
    (cbor2.dumps(_cose_array(payload="text")), "parse", "COSE_Sign1 payload and signature must be byte strings"),
    (cbor2.dumps(_cose_array(payload=cbor2.dumps([1, 2]))), "parse", "attestation payload is not a CBOR map"),
    (cbor2.dumps(_cose_array(protected=cbor2.dumps({1: -7}))), "structure",
     "COSE algorithm must be ES384 (-35), got {1: -7}"),
    (cbor2.dumps(_cose_array(protected=b"")), "structure", "COSE algorithm must be ES384 (-35), got {}"),
    (cbor2.dumps(_cose_array(signature=b"\x01" * 64)), "structure", "ES384 signature must be 96 bytes, got 64"),
    (cbor2.dumps(_cose_array(signature=b"\x01" * 96)), "signature", "COSE_Sign1 ES384 signature does not verify"),
])
def test_each_broken_cose_rule_is_named(evidence: bytes, step: str | None, message: str) -> None:
    assert _check(evidence) == (step, message)


def test_a_document_over_the_size_limit_is_refused_before_parsing() -> None:
    step, message = _check(_doc(user_data=None, extra=b"x" * (64 << 10)), platform="aws-nitro")
    assert step == "structure" and message.startswith("document is ") and "limit" in message


def test_a_certificate_key_that_is_not_p384_fails_signature() -> None:
    p256_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p256")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(p256_key.public_key())
            .serial_number(1).not_valid_before(NOW - timedelta(hours=1)).not_valid_after(NOW + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(p256_key, hashes.SHA256()))
    evidence = _doc(certificate=cert.public_bytes(Encoding.DER))
    assert _check(evidence) == ("signature", "signing certificate key is not ECDSA P-384")
