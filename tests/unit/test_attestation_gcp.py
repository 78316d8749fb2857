"""The GCP vTPM verifier's rules (teeprover/attestation/gcp.py) before and around the AK's signature.

The recorded go-tpm-tools attestation is decoded and encoded again with the evidence module's own encoder, with
one part changed; each change must fail at its named step.  The re-encoded sample verifies first.
"""

from __future__ import annotations

from typing import Any

import pytest

from teeprover.attestation import _protobuf, gcp, verify
from teeprover.attestation.evidence.gcp import encode_gcp_attestation

from .test_attestation_samples import SNP_AT, read

SAMPLE = read("gcp/gce-cos-85-nonce9009.pb")
MSG = gcp._parse(SAMPLE)


def _encode(*, ak_pub: bytes | None = None, ak_cert: bytes | None = None, quotes: list[dict[str, Any]] | None = None,
            intermediates: list[bytes] | None = None) -> bytes:
    qs = MSG["quotes"] if quotes is None else quotes
    return encode_gcp_attestation(
        MSG["ak_pub"] if ak_pub is None else ak_pub,
        [(q["pcr_hash"], q["quote"], q["raw_sig"], q["pcrs"]) for q in qs],
        MSG["ak_cert"] if ak_cert is None else ak_cert,
        intermediates=tuple(MSG["intermediates"] if intermediates is None else intermediates),
    )


def _without(number: int) -> bytes:
    """The sample without protobuf field ``number`` (6 ak_cert, 1 ak_pub)."""
    kept = [(n, v) for n, v in _protobuf.fields(SAMPLE) if n != number]
    assert all(isinstance(v, bytes) for _, v in kept)
    return b"".join(_protobuf.bytes_field(n, v) for n, v in kept if isinstance(v, bytes))


def _check(evidence: bytes, **kw: Any) -> tuple[str | None, str]:
    result = verify(evidence, platform="gcp-vtpm", now=SNP_AT, **kw)
    return result.failed_step, result.message


def _quote(i: int = 0, **changes: Any) -> dict[str, Any]:
    return {**MSG["quotes"][i], **changes}


def test_the_re_encoded_sample_verifies() -> None:
    assert _check(_encode()) == (None, "")
    assert len(MSG["quotes"]) >= 2  # the sample quotes more than one PCR bank


@pytest.mark.parametrize(("evidence", "step", "message"), [
    (b"\x0a" * (128 * 1024 + 1), "structure", "attestation is 131073 bytes, limit 131072"),
    (b"\x0a\xff", "parse", "not a go-tpm-tools Attestation protobuf"),
    (_without(6), "structure", "ak_pub and ak_cert are required"),
    (_without(1), "structure", "ak_pub and ak_cert are required"),
    (_encode(quotes=[]), "structure", "expected 1..8 quotes"),
    (_encode(quotes=[_quote()] * 9), "structure", "expected 1..8 quotes"),
    (_encode(ak_pub=b"\x00\x23" + MSG["ak_pub"][2:]), "structure", "AK is not an RSA key"),
    (_encode(ak_pub=MSG["ak_pub"] + b"\x00"), "structure", "trailing bytes after TPMT_PUBLIC"),
    (_encode(quotes=[_quote(pcr_hash=0x0005)]), "structure", "quote without quote bytes, signature or known PCR bank"),
    (_encode(quotes=[_quote(quote=_quote()["quote"] + b"\x00")]), "structure", "trailing bytes after TPMS_ATTEST"),
    (_encode(quotes=[_quote(raw_sig=_quote()["raw_sig"] + b"\x00")]), "structure",
     "trailing bytes after TPMT_SIGNATURE"),
    (_encode(quotes=[_quote(quote=b"\x00\x00\x00\x00" + _quote()["quote"][4:])]), "structure",
     "TPMS_ATTEST is not a TPM-generated quote"),
    (_encode(quotes=[_quote(raw_sig=b"\x00\x18" + _quote()["raw_sig"][2:])]), "signature",
     "unsupported TPM signature scheme 0x18/0xb"),
    (_encode(quotes=[_quote(pcrs={k: v for k, v in _quote()["pcrs"].items() if k != 0})]), "signature",
     "PCR selection of the quote differs from the PCR values sent"),
    (_encode(quotes=[_quote(pcrs={**_quote()["pcrs"], 0: b"\x01" * len(_quote()["pcrs"][0])})]), "signature",
     "PCR values do not match the quoted pcrDigest"),
])
def test_each_rule_is_named(evidence: bytes, step: str, message: str) -> None:
    got_step, got_message = _check(evidence)
    assert got_step == step and message in got_message, (got_step, got_message)


def test_an_ak_certificate_for_another_key_fails_chain() -> None:
    other = MSG["ak_pub"][:-8] + bytes(8)  # same shape, another modulus
    step, message = _check(_encode(ak_pub=other))
    assert (step, message) == ("chain", "AK certificate does not certify ak_pub")


def test_report_data_is_checked_in_every_quote() -> None:
    step, message = _check(_encode(), report_data=b"r" * 64)
    assert (step, message) == ("nonce", "quote extraData is not SHA-256 of the expected report_data")
