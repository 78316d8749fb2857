"""The Azure (MAA token) verifier's rules (teeprover/attestation/azure.py), one at a time.

The recorded MAA token is decoded, one claim or header field is changed, and the token is signed again by a
test key published in a JWKS under the sample's issuer and kid: the trust anchors are injectable (the JWKS is
what ``--roots``/``--issuer`` give), so every check behind the signature is reachable and must fail at its
named step.  The re-signed, unchanged token verifies first: each "no" has its "yes".
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from teeprover.attestation import Roots, verify

from .test_attestation_samples import AZURE_AT, AZURE_ISSUER, azure_token

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


HEADER, CLAIMS = (_unb64(part) for part in azure_token().decode().split(".")[:2])


def _token(header: Any = None, claims: Any = None, key: rsa.RSAPrivateKey = KEY) -> bytes:
    head = _b64(json.dumps(HEADER if header is None else header).encode())
    body = _b64(json.dumps(CLAIMS if claims is None else claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}".encode()


def _jwk(key: rsa.RSAPrivateKey = KEY, kid: str | None = None) -> dict[str, str]:
    n = key.public_key().public_numbers().n
    return {"kty": "RSA", "kid": kid or HEADER["kid"], "n": _b64(n.to_bytes((n.bit_length() + 7) // 8, "big")),
            "e": "AQAB"}


ROOTS = Roots(jwks={AZURE_ISSUER: {"keys": [_jwk()]}})


def _check(token: bytes, roots: Roots = ROOTS, **kw: Any) -> tuple[str | None, str]:
    result = verify(token, platform="azure", roots=roots, now=AZURE_AT, **kw)
    return result.failed_step, result.message


def _claims(**changes: Any) -> dict[str, Any]:
    claims = copy.deepcopy(CLAIMS)
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def test_the_re_signed_sample_verifies_under_the_test_key() -> None:
    assert _check(_token()) == (None, "")
    assert _check(azure_token())[0] == "signature"  # the vendor's signature does not verify under our key


@pytest.mark.parametrize(("token", "step", "message"), [
    (b"a.b", "parse", "evidence is not a compact JWS (three base64url parts of JSON)"),
    ("é.é.é".encode(), "parse", "evidence is not a compact JWS"),
    (b"x" * (64 * 1024 + 1), "structure", "token is 65537 bytes, limit 65536"),
    (_token(header=["RS256"]), "structure", "JWT header and claims must be JSON objects"),
    (_token(header={**HEADER, "alg": "none"}), "structure", "alg must be RS256, got 'none'"),
    (_token(header={k: v for k, v in HEADER.items() if k != "kid"}), "structure",
     "kid (header) and iss (claims) are required strings"),
    (_token(claims=_claims(iss=7)), "structure", "kid (header) and iss (claims) are required strings"),
    (_token(claims=_claims(**{"x-ms-isolation-tee": None})), "structure", "x-ms-isolation-tee claim missing"),
    (_token(claims=_claims(iat=True)), "structure", "iat must be an integer"),
    (_token(claims=_claims(exp="tomorrow")), "structure", "exp must be an integer"),
])
def test_each_token_rule_is_named(token: bytes, step: str, message: str) -> None:
    got_step, got_message = _check(token)
    assert got_step == step and got_message.startswith(message), (got_step, got_message)


def test_only_usable_rsa_keys_of_the_tokens_kid_are_tried() -> None:
    ec_key = {"kty": "EC", "kid": HEADER["kid"], "crv": "P-256"}
    broken = {"kty": "RSA", "kid": HEADER["kid"], "n": "!!", "e": "AQAB"}
    other_kid = _jwk(kid="another kid")
    junk = Roots(jwks={AZURE_ISSUER: {"keys": [ec_key, broken, other_kid, "not a key"]}})
    assert _check(_token(), junk) == ("chain", f"no usable RSA key with kid {HEADER['kid']!r} in the JWKS of "
                                               f"{AZURE_ISSUER}")
    assert _check(_token(), Roots(jwks={"https://other.example": {"keys": [_jwk()]}}))[0] == "chain"
    # A wrong RSA key first and the right one second: the right one is found.
    two = Roots(jwks={AZURE_ISSUER: {"keys": [_jwk(rsa.generate_private_key(65537, 2048)), _jwk()]}})
    assert _check(_token(), two) == (None, "")


def test_a_jwk_carrying_an_x5c_certificate_is_used_for_its_key() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "maa test signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(KEY.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(KEY, hashes.SHA256()))
    x5c = {"kid": HEADER["kid"], "x5c": [base64.b64encode(cert.public_bytes(Encoding.DER)).decode()]}
    assert _check(_token(), Roots(jwks={AZURE_ISSUER: {"keys": [x5c]}})) == (None, "")
    ec_cert_key = ec.generate_private_key(ec.SECP256R1())
    ec_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ec_cert_key.public_key())
               .serial_number(2).not_valid_before(now - dt.timedelta(days=1))
               .not_valid_after(now + dt.timedelta(days=1)).sign(ec_cert_key, hashes.SHA256()))
    not_rsa = {"kid": HEADER["kid"], "x5c": [base64.b64encode(ec_cert.public_bytes(Encoding.DER)).decode()]}
    assert _check(_token(), Roots(jwks={AZURE_ISSUER: {"keys": [not_rsa]}}))[0] == "chain"


def test_the_token_validity_window_is_checked_at_the_injected_clock() -> None:
    nbf, exp, iat = CLAIMS["nbf"], CLAIMS["exp"], CLAIMS["iat"]
    at = dt.datetime.fromtimestamp
    early = verify(_token(), platform="azure", roots=ROOTS, now=at(nbf - 3600, dt.UTC))
    late = verify(_token(), platform="azure", roots=ROOTS, now=at(exp + 3600, dt.UTC))
    old = verify(_token(), platform="azure", roots=ROOTS, now=at(iat + 600, dt.UTC),
                 max_age=dt.timedelta(seconds=60))
    assert (early.failed_step, early.message) == ("freshness", "token is not yet valid (nbf)")
    assert (late.failed_step, late.message) == ("freshness", "token has expired (exp)")
    assert (old.failed_step, old.message) == ("freshness", "token was issued too long ago (iat)")


def test_a_nonce_claim_that_is_not_base64_never_matches() -> None:
    runtime = copy.deepcopy(CLAIMS.get("x-ms-runtime") or {})
    runtime.setdefault("client-payload", {})["nonce"] = "not base64 !"
    step, message = _check(_token(claims=_claims(**{"x-ms-runtime": runtime})), nonce=b"nonce")
    assert step == "nonce" and message.startswith("the request nonce")


def test_an_isolation_tee_other_than_sev_snp_is_a_policy_violation() -> None:
    claims = _claims()
    claims["x-ms-isolation-tee"]["x-ms-attestation-type"] = "tdxvm"
    assert _check(_token(claims=claims)) == ("policy", "isolation TEE is 'tdxvm', not sevsnpvm")
