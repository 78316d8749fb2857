"""The SEV-SNP evidence rules (teeprover/attestation/snp.py) checked before the signature, one at a time.

Reports come from the miniature AMD PKI of the evidence tests (``FakeAmd``: ARK -> ASK -> VCEK and a chip that
signs); one field of the bundle or the report is changed, and the verifier must name the rule at the parse or
structure step, before it trusts anything the report says.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from teeprover.attestation import Roots, snp_evidence, verify

from .test_attestation_evidence import NOW, FakeAmd


@pytest.fixture(scope="module")
def amd() -> FakeAmd:
    return FakeAmd()


def _check(evidence: bytes, amd: FakeAmd) -> tuple[str | None, str]:
    result = verify(evidence, platform="sev-snp", roots=Roots(anchors=(amd.ark,), intermediates=(amd.ask,)),
                    now=NOW)
    return result.failed_step, result.message


def _report(amd: FakeAmd, offset: int = 0, value: int | None = None) -> bytes:
    report = bytearray(amd.report(bytes(64)))
    if value is not None:
        struct.pack_into("<I", report, offset, value)
    return bytes(report)


def _bundle(amd: FakeAmd, **fields: Any) -> bytes:
    bundle: dict[str, Any] = {"report": _report(amd), "vek": amd.vcek.public_bytes(Encoding.DER)}
    bundle.update(fields)
    return cbor2.dumps(bundle)


def test_the_fake_chips_report_verifies(amd: FakeAmd) -> None:
    assert _check(snp_evidence(_report(amd), amd.vcek.public_bytes(Encoding.DER)), amd) == (None, "")


@pytest.mark.parametrize(("fields", "step", "message"), [
    ({"report": "text"}, "parse", "sev-snp evidence must be a CBOR map with byte strings report and vek"),
    ({"vek": None}, "parse", "sev-snp evidence must be a CBOR map with byte strings report and vek"),
    ({"ask": "PEM text"}, "parse", "ask must be a byte string"),
    ({"vlek": b""}, "structure", "unknown keys in sev-snp evidence"),
])
def test_each_bundle_rule_is_named(amd: FakeAmd, fields: dict[str, Any], step: str, message: str) -> None:
    assert _check(_bundle(amd, **fields), amd) == (step, message)


@pytest.mark.parametrize(("offset", "value", "message"), [
    (0x00, 1, "unsupported report version 1"),
    (0x00, 6, "unsupported report version 6"),
    (0x34, 2, "signature_algo 2 is not ECDSA P-384/SHA-384"),
    (0x48, 3 << 2, "report signed by key 3 (neither VCEK nor VLEK)"),
    (0x30, 4, "vmpl 4 out of range"),
])
def test_each_report_field_rule_fails_structure_before_the_signature(amd: FakeAmd, offset: int, value: int,
                                                                     message: str) -> None:
    evidence = snp_evidence(_report(amd, offset, value), amd.vcek.public_bytes(Encoding.DER))
    assert _check(evidence, amd) == ("structure", message)


def test_a_report_claiming_the_vlek_with_a_vcek_certificate_fails_chain(amd: FakeAmd) -> None:
    evidence = snp_evidence(_report(amd, 0x48, 1 << 2), amd.vcek.public_bytes(Encoding.DER))
    assert _check(evidence, amd) == ("chain", "report is signed by the VLEK, the certificate is 'SEV-VCEK'")


def test_an_ask_in_the_bundle_completes_the_chain_without_configured_intermediates(amd: FakeAmd) -> None:
    evidence = snp_evidence(_report(amd), amd.vcek.public_bytes(Encoding.DER), amd.ask.public_bytes(Encoding.DER))
    result = verify(evidence, platform="sev-snp", roots=Roots(anchors=(amd.ark,)), now=NOW)
    assert result.ok, result
    without = verify(snp_evidence(_report(amd), amd.vcek.public_bytes(Encoding.DER)), platform="sev-snp",
                     roots=Roots(anchors=(amd.ark,)), now=NOW)
    assert without.failed_step == "chain"
