"""Microsoft Azure Attestation (MAA) tokens for SEV-SNP confidential VMs (JWT, RS256).

The signing key comes only from the JWKS the caller configured for an allow-listed issuer
(``Roots.jwks``: issuer URL -> ``{"keys": [...]}``); the token's ``jku`` header is ignored,
so a token cannot point us at a key of its choosing.  JWS is checked by hand (RS256 =
RSASSA-PKCS1-v1_5 / SHA-256 over ``header.payload``) to avoid a dependency for ~20 lines.

Two token shapes carry the SEV-SNP claims: ``/attest/AzureGuest`` (vTPM guest attestation)
nests them under ``x-ms-isolation-tee``; ``/attest/SevSnpVm`` (what ``evidence.azure`` asks
for) puts them at the top level with ``x-ms-attestation-type: sevsnpvm``.  In both, the TEE's
``x-ms-runtime`` is the paravisor's runtime data, whose SHA-256 MAA checked against the
hardware report_data, and its ``user-data`` (hex) is what the guest wrote to the vTPM: our
binding.  The request nonce is echoed as ``x-ms-runtime.client-payload.nonce`` (AzureGuest)
or as the top-level ``nonce`` claim (SevSnpVm).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .result import Checks, StepFailed

MAX_TOKEN_BYTES = 64 * 1024


def _b64url(segment: str) -> bytes:
    if not segment or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _jwk_public_key(jwk: Any) -> rsa.RSAPublicKey | None:
    if not isinstance(jwk, dict):
        return None
    try:
        if isinstance(jwk.get("x5c"), list) and jwk["x5c"]:
            key = x509.load_der_x509_certificate(base64.b64decode(jwk["x5c"][0])).public_key()
        elif jwk.get("kty") == "RSA":
            n = int.from_bytes(_b64url(jwk["n"]), "big")
            e = int.from_bytes(_b64url(jwk["e"]), "big")
            key = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            return None
    except Exception:  # noqa: BLE001 - an unusable JWKS entry is skipped
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


def verify_azure(evidence: bytes, checks: Checks, facts: dict[str, Any]) -> None:
    # parse
    if len(evidence) > MAX_TOKEN_BYTES:
        raise StepFailed("structure", f"token is {len(evidence)} bytes, limit {MAX_TOKEN_BYTES}")
    try:
        text = evidence.decode("ascii").strip()
        head_b64, body_b64, sig_b64 = text.split(".")
        header = json.loads(_b64url(head_b64))
        claims = json.loads(_b64url(body_b64))
        signature = _b64url(sig_b64)
    except (UnicodeDecodeError, ValueError, binascii.Error, RecursionError):
        raise StepFailed("parse", "evidence is not a compact JWS (three base64url parts of JSON)") from None

    # structure
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise StepFailed("structure", "JWT header and claims must be JSON objects")
    if header.get("alg") != "RS256":
        raise StepFailed("structure", f"alg must be RS256, got {header.get('alg')!r:.20}")
    kid, iss = header.get("kid"), claims.get("iss")
    if not isinstance(kid, str) or not isinstance(iss, str):
        raise StepFailed("structure", "kid (header) and iss (claims) are required strings")
    tee = claims.get("x-ms-isolation-tee")
    if not isinstance(tee, dict) and claims.get("x-ms-attestation-type") == "sevsnpvm":
        tee = claims  # /attest/SevSnpVm: the TEE claims are the top-level claims
    if not isinstance(tee, dict):
        raise StepFailed("structure", "x-ms-isolation-tee claim missing")
    for name in ("iat", "nbf", "exp"):
        if not isinstance(claims.get(name), int) or isinstance(claims.get(name), bool):
            raise StepFailed("structure", f"{name} must be an integer")
    runtime: dict[str, Any] = claims["x-ms-runtime"] if isinstance(claims.get("x-ms-runtime"), dict) else {}
    payload: dict[str, Any] = runtime["client-payload"] if isinstance(runtime.get("client-payload"), dict) else {}
    tee_runtime: dict[str, Any] = tee["x-ms-runtime"] if isinstance(tee.get("x-ms-runtime"), dict) else {}
    request_nonce = payload.get("nonce", claims.get("nonce"))
    measurement = tee.get("x-ms-sevsnpvm-launchmeasurement")
    facts.update(
        issuer=iss,
        kid=kid,
        iat=claims["iat"],
        nbf=claims["nbf"],
        exp=claims["exp"],
        attestation_type=claims.get("x-ms-attestation-type"),
        vm_id=claims.get("x-ms-azurevm-vmid"),
        secureboot=claims.get("secureboot"),
        tee_type=tee.get("x-ms-attestation-type"),
        compliance_status=tee.get("x-ms-compliance-status"),
        measurement=measurement,
        measurements={"launch_measurement": measurement} if isinstance(measurement, str) else {},
        microcode_svn=tee.get("x-ms-sevsnpvm-microcode-svn"),
        snpfw_svn=tee.get("x-ms-sevsnpvm-snpfw-svn"),
        vmpl=tee.get("x-ms-sevsnpvm-vmpl"),
        report_data=tee.get("x-ms-sevsnpvm-reportdata"),
        is_debuggable=tee.get("x-ms-sevsnpvm-is-debuggable"),
        user_data=tee_runtime.get("user-data"),
        client_nonce=request_nonce,
        debug=tee.get("x-ms-sevsnpvm-is-debuggable") is not False,
    )

    # chain: issuer allow-listed, key taken from that issuer's configured JWKS by kid
    jwks = checks.roots.jwks.get(iss)
    if not isinstance(jwks, dict):
        raise StepFailed("chain", f"issuer {iss!r:.80} is not allow-listed")
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
    public_keys = [pk for pk in (_jwk_public_key(k) for k in keys) if pk is not None]
    if not public_keys:
        raise StepFailed("chain", f"no usable RSA key with kid {kid!r:.60} in the JWKS of {iss:.80}")

    # signature
    signed = f"{head_b64}.{body_b64}".encode()
    for key in public_keys:
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            break
        except InvalidSignature:
            continue
    else:
        raise StepFailed("signature", "RS256 signature does not verify")

    # nonce
    if checks.nonce is not None:
        try:
            carried = base64.b64decode(request_nonce if request_nonce is not None else "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            carried = b""
        if carried != checks.nonce:
            raise StepFailed("nonce", "the request nonce (x-ms-runtime.client-payload.nonce or nonce) differs "
                                      "from the expected nonce")
    if checks.report_data is not None:
        # Our binding is the vTPM user-data; evidence whose hardware report_data is the binding
        # itself (no paravisor) is accepted too.  Both are covered by the hardware signature.
        carried_binding = {str(v).lower() for v in (facts["user_data"], facts["report_data"]) if isinstance(v, str)}
        if checks.report_data.hex() not in carried_binding:
            raise StepFailed("nonce", "neither x-ms-runtime.user-data nor x-ms-sevsnpvm-reportdata carries the "
                                      "expected binding")

    # freshness: token validity window at the injected clock
    now = checks.now.timestamp()
    skew = checks.clock_skew_seconds
    if now + skew < claims["nbf"]:
        raise StepFailed("freshness", "token is not yet valid (nbf)")
    if now - skew > claims["exp"]:
        raise StepFailed("freshness", "token has expired (exp)")
    if checks.max_age_seconds is not None and now - claims["iat"] > checks.max_age_seconds:
        raise StepFailed("freshness", "token was issued too long ago (iat)")

    violations = []
    if tee.get("x-ms-attestation-type") != "sevsnpvm":
        violations.append(f"isolation TEE is {tee.get('x-ms-attestation-type')!r:.30}, not sevsnpvm")
    facts["policy_violations"] = violations
