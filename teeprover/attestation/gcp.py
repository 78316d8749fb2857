"""GCE vTPM attestations: go-tpm-tools ``attest.Attestation`` (protobuf) with TPM2 quotes.

Fields used: 1 ak_pub (TPMT_PUBLIC), 2 quotes[] {1 quote (TPMS_ATTEST), 2 raw_sig
(TPMT_SIGNATURE), 3 pcrs {1 hash alg, 2 map<uint32, bytes>}}, 6 ak_cert (DER),
7 intermediate_certs (DER).  Checks: AK certificate -> pinned Google/TPM EK CA, AK
certificate key == ak_pub, every quote signed by the AK (RSASSA-PKCS1-v1_5), magic/type,
pcrDigest == H(selected PCR values in index order) with the *signature scheme's* hash,
extraData == nonce, or == SHA-256(report_data) for evidence from our ``collect`` (``quote_nonce``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import _protobuf, _x509
from .result import Checks, StepFailed
from .tpm import (  # TPM 2.0 structures, big-endian and bounded
    TPM_ALG_NULL,
    TPM_ALG_RSA,
    TPM_ALG_RSASSA,
    TPM_ALG_SHA1,
    TPM_ALG_SHA256,
    TPM_ALG_SHA384,
    TPM_ALG_SHA512,
    TPM_GENERATED_VALUE,
    TPM_ST_ATTEST_QUOTE,
    Reader,
)

MAX_ATTESTATION_BYTES = 128 * 1024
HASHES = {
    TPM_ALG_SHA1: ("sha1", hashes.SHA1),
    TPM_ALG_SHA256: ("sha256", hashes.SHA256),
    TPM_ALG_SHA384: ("sha384", hashes.SHA384),
    TPM_ALG_SHA512: ("sha512", hashes.SHA512),
}


def quote_nonce(report_data: bytes) -> bytes:
    """The qualifyingData our evidence collection quotes with: SHA-256 of the 64-byte report data.

    Not the report data itself: a TPM2B_DATA holds at most sizeof(TPMT_HA) bytes, the TPM's
    largest implemented digest plus 2, i.e. 50 bytes on a SHA-384 vTPM such as GCE's, and
    TPM2_Quote answers TPM_RC_SIZE for a 64-byte nonce.  Every TPM 2.0 implements SHA-256.
    """
    return hashlib.sha256(report_data).digest()


def pcr_digest(hash_alg: int, values: dict[int, bytes]) -> bytes:
    """The pcrDigest a quote of ``values`` carries: H(PCR values in index order), H the signing scheme's hash."""
    return hashlib.new(HASHES[hash_alg][0], b"".join(values[i] for i in sorted(values))).digest()


def parse_rsa_public(data: bytes) -> tuple[rsa.RSAPublicKey, int]:
    """TPMT_PUBLIC of an RSA signing key -> (public key, scheme hash alg)."""
    r = Reader(data)
    if r.u16() != TPM_ALG_RSA:
        raise ValueError("AK is not an RSA key (only RSA AKs are supported)")
    r.u16()  # nameAlg
    r.u32()  # objectAttributes
    r.tpm2b()  # authPolicy
    if r.u16() != TPM_ALG_NULL:  # symmetric: a signing key has none
        raise ValueError("AK has a symmetric algorithm; not a signing key")
    scheme = r.u16()
    scheme_hash = r.u16() if scheme != TPM_ALG_NULL else 0
    r.u16()  # keyBits
    exponent = r.u32() or 65537
    modulus = int.from_bytes(r.tpm2b(), "big")
    if r.pos != len(data):
        raise ValueError("trailing bytes after TPMT_PUBLIC")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key(), scheme_hash


def parse_attest(data: bytes) -> dict[str, Any]:
    r = Reader(data)
    out: dict[str, Any] = {"magic": r.u32(), "type": r.u16(), "qualified_signer": r.tpm2b(), "extra_data": r.tpm2b()}
    out["clock"], out["reset_count"], out["restart_count"], out["safe"] = r.u64(), r.u32(), r.u32(), r.u8()
    out["firmware_version"] = r.u64()
    out["selections"] = r.pcr_selections()
    out["pcr_digest"] = r.tpm2b()
    if r.pos != len(data):
        raise ValueError("trailing bytes after TPMS_ATTEST")
    return out


def parse_signature(data: bytes) -> tuple[int, int, bytes]:
    r = Reader(data)
    alg, hash_alg, sig = r.u16(), r.u16(), r.tpm2b()
    if r.pos != len(data):
        raise ValueError("trailing bytes after TPMT_SIGNATURE")
    return alg, hash_alg, sig


def _parse_quote(data: bytes) -> dict[str, Any]:
    """One ``tpm.Quote``: 1 quote, 2 raw_sig, 3 pcrs {1 hash, 2 map<uint32, bytes>}."""
    quote: dict[str, Any] = {"quote": None, "raw_sig": None, "pcr_hash": None, "pcrs": {}}
    for qn, qv in _protobuf.fields(data):
        if qn == 1 and isinstance(qv, bytes):
            quote["quote"] = qv
        elif qn == 2 and isinstance(qv, bytes):
            quote["raw_sig"] = qv
        elif qn == 3 and isinstance(qv, bytes):
            for pn, pv in _protobuf.fields(qv):
                if pn == 1 and isinstance(pv, int):
                    quote["pcr_hash"] = pv
                elif pn == 2 and isinstance(pv, bytes):
                    entry = dict(_protobuf.fields(pv))
                    key, val = entry.get(1, 0), entry.get(2, b"")
                    if not isinstance(key, int) or not isinstance(val, bytes):
                        raise ValueError("bad PCR map entry")
                    quote["pcrs"][key] = val
    return quote


def _parse(evidence: bytes) -> dict[str, Any]:
    msg: dict[str, Any] = {"ak_pub": None, "quotes": [], "ak_cert": None, "intermediates": []}
    for number, value in _protobuf.fields(evidence):
        if number == 1 and isinstance(value, bytes):
            msg["ak_pub"] = value
        elif number == 2 and isinstance(value, bytes):
            msg["quotes"].append(_parse_quote(value))
        elif number == 6 and isinstance(value, bytes):
            msg["ak_cert"] = value
        elif number == 7 and isinstance(value, bytes):
            msg["intermediates"].append(value)
    return msg


def verify_gcp(evidence: bytes, checks: Checks, facts: dict[str, Any]) -> None:
    if len(evidence) > MAX_ATTESTATION_BYTES:
        raise StepFailed("structure", f"attestation is {len(evidence)} bytes, limit {MAX_ATTESTATION_BYTES}")
    try:
        msg = _parse(evidence)
    except (ValueError, KeyError, TypeError) as exc:
        raise StepFailed("parse", f"not a go-tpm-tools Attestation protobuf: {exc}") from None

    # structure
    if msg["ak_pub"] is None or msg["ak_cert"] is None:
        raise StepFailed("structure", "ak_pub and ak_cert are required")
    if not 1 <= len(msg["quotes"]) <= 8:
        raise StepFailed("structure", "expected 1..8 quotes")
    try:
        ak_key, _ = parse_rsa_public(msg["ak_pub"])
        quotes = []
        for q in msg["quotes"]:
            if q["quote"] is None or q["raw_sig"] is None or q["pcr_hash"] not in HASHES:
                raise ValueError("quote without quote bytes, signature or known PCR bank")
            quotes.append((q, parse_attest(q["quote"]), parse_signature(q["raw_sig"])))
    except ValueError as exc:
        raise StepFailed("structure", str(exc)) from None
    for _, attest, _ in quotes:
        if attest["magic"] != TPM_GENERATED_VALUE or attest["type"] != TPM_ST_ATTEST_QUOTE:
            raise StepFailed("structure", "TPMS_ATTEST is not a TPM-generated quote")
    facts["quotes"] = [
        {"bank": HASHES[q["pcr_hash"]][0], "pcrs": sorted(q["pcrs"]), "extra_data": a["extra_data"].hex()}
        for q, a, _ in quotes
    ]
    facts["pcrs"] = {HASHES[q["pcr_hash"]][0]: {i: q["pcrs"][i].hex() for i in sorted(q["pcrs"])} for q, _, _ in quotes}
    facts["measurements"] = {f"{bank}:pcr{i}": v for bank, pcrs in facts["pcrs"].items() for i, v in pcrs.items()}
    facts["nonce"] = quotes[0][1]["extra_data"]

    # chain: AK certificate -> pinned CA, and it certifies exactly ak_pub
    ak_cert = _x509.load_der(msg["ak_cert"], "AK certificate")
    bundle = [_x509.load_der(c, "intermediate certificate") for c in msg["intermediates"]]
    path = _x509.build_chain(ak_cert, [*bundle, *checks.roots.intermediates], checks.roots.anchors, checks.now)
    facts["chain"] = [c.subject.rfc4514_string() for c in path]
    facts["root_sha256"] = _x509.fingerprint(path[-1])
    cert_key = ak_cert.public_key()
    if not isinstance(cert_key, rsa.RSAPublicKey) or cert_key.public_numbers() != ak_key.public_numbers():
        raise StepFailed("chain", "AK certificate does not certify ak_pub")

    # signature: each quote by the AK, and the PCR values are the ones quoted
    for q, attest, (sig_alg, sig_hash, sig) in quotes:
        if sig_alg != TPM_ALG_RSASSA or sig_hash not in HASHES:
            raise StepFailed("signature", f"unsupported TPM signature scheme {sig_alg:#x}/{sig_hash:#x}")
        hash_cls = HASHES[sig_hash][1]
        try:
            ak_key.verify(sig, q["quote"], padding.PKCS1v15(), hash_cls())
        except InvalidSignature:
            raise StepFailed(
                "signature", f"{HASHES[q['pcr_hash']][0]} quote signature does not verify with the AK"
            ) from None
        selected = [idx for alg, idxs in attest["selections"] if alg == q["pcr_hash"] for idx in idxs]
        if sorted(selected) != sorted(q["pcrs"]) or any(alg != q["pcr_hash"] for alg, _ in attest["selections"]):
            raise StepFailed("signature", "PCR selection of the quote differs from the PCR values sent")
        if pcr_digest(sig_hash, q["pcrs"]) != attest["pcr_digest"]:  # q["pcrs"] is exactly ``selected``
            raise StepFailed("signature", f"{HASHES[q['pcr_hash']][0]} PCR values do not match the quoted pcrDigest")

    # nonce (every quote must carry it); freshness comes only from the nonce.  Our own evidence
    # carries quote_nonce(report_data); report_data, when given, takes precedence over nonce.
    if checks.report_data is not None:
        for _, attest, _ in quotes:
            if attest["extra_data"] != quote_nonce(checks.report_data):
                raise StepFailed("nonce", "quote extraData is not SHA-256 of the expected report_data")
    elif checks.nonce is not None:
        for _, attest, _ in quotes:
            if attest["extra_data"] != checks.nonce:
                raise StepFailed("nonce", "quote extraData differs from the expected nonce")
    facts["debug"] = False
