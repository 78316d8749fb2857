"""Per-platform mutations fail at the right named step; no input makes verify() raise."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teeprover.attestation import Result, Roots, create_manifest, snp_evidence, verify
from teeprover.attestation.roots import _pinned

from .test_attestation_samples import (
    AZURE_AT,
    AZURE_ISSUER,
    NITRO_AT,
    SNP_AT,
    TDX_V4_AT,
    azure_roots,
    azure_token,
    nitro_prod,
    read,
    snp_trustee_vlek,
    snp_virtee,
    snp_virtee_report,
    tdx_evidence,
    tdx_v4,
)


def flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 0x01
    return bytes(out)


def manifest_for(platform: str, ref: dict[str, str]):
    return create_manifest(
        git_commit="a" * 40,
        image_digest="sha256:" + "b" * 64,
        timestamp="2025-01-01T00:00:00Z",
        platforms={platform: [ref]},
    )


# --------------------------------------------------------------------------------------------- nitro


def nitro_verify(doc: bytes, **kw) -> Result:
    return verify(doc, platform="aws-nitro", now=NITRO_AT, **kw)


def test_nitro_flipped_signature_byte_fails_signature() -> None:
    doc = nitro_prod()
    assert nitro_verify(flip(doc, len(doc) - 10)).failed_step == "signature"


def test_nitro_flipped_pcr_byte_in_payload_fails_signature() -> None:
    doc = nitro_prod()
    pcr0 = bytes.fromhex("e72a46ca80a260fb044a125442f0c7e3")
    assert nitro_verify(flip(doc, doc.index(pcr0) + 3)).failed_step == "signature"


def test_nitro_flipped_leaf_certificate_byte_fails_chain() -> None:
    doc = nitro_prod()
    leaf = cbor2.loads(cbor2.loads(doc)[2])["certificate"]
    assert nitro_verify(flip(doc, doc.index(leaf) + len(leaf) - 3)).failed_step == "chain"


def test_nitro_flipped_cabundle_byte_fails_chain() -> None:
    doc = nitro_prod()
    inter = cbor2.loads(cbor2.loads(doc)[2])["cabundle"][2]
    assert nitro_verify(flip(doc, doc.index(inter) + len(inter) - 3)).failed_step == "chain"


def test_nitro_wrong_root_fails_chain() -> None:
    amd = Roots.from_pems(_pinned.AMD_MILAN_ARK)
    assert nitro_verify(nitro_prod(), roots=amd).failed_step == "chain"


def test_nitro_wrong_nonce_fails_nonce_and_right_one_passes() -> None:
    assert nitro_verify(nitro_prod(), nonce=b"\x01" * 64).failed_step == "nonce"
    assert nitro_verify(nitro_prod(), report_data=b"\x02" * 64).failed_step == "nonce"


def test_nitro_measurement_not_in_manifest_fails_measurements() -> None:
    facts = nitro_verify(nitro_prod()).facts
    good = manifest_for("aws-nitro", {k: facts["measurements"][k] for k in ("pcr0", "pcr1", "pcr2")})
    assert nitro_verify(nitro_prod(), expected=good).ok
    bad = manifest_for("aws-nitro", {"pcr0": "00" * 48})
    assert nitro_verify(nitro_prod(), expected=bad).failed_step == "measurements"
    other_platform = manifest_for("sev-snp", {"measurement": "00" * 48})
    assert nitro_verify(nitro_prod(), expected=other_platform).failed_step == "measurements"


@pytest.mark.parametrize("cut", [1, 100, 5000])
def test_nitro_truncated_fails_parse(cut: int) -> None:
    assert nitro_verify(nitro_prod()[:-cut]).failed_step == "parse"


def test_nitro_too_old_fails_freshness_only_when_max_age_is_set() -> None:
    later = NITRO_AT + timedelta(hours=2)
    assert verify(nitro_prod(), platform="aws-nitro", now=later).ok
    result = verify(nitro_prod(), platform="aws-nitro", now=later, max_age=timedelta(minutes=10))
    assert result.failed_step == "freshness"


def test_nitro_document_from_the_future_fails_freshness() -> None:
    early = NITRO_AT - timedelta(minutes=30)  # leaf notBefore is 3 s before the timestamp: chain fails first
    assert verify(nitro_prod(), platform="aws-nitro", now=early).failed_step == "chain"


def test_unknown_platform_and_empty_input_are_named() -> None:
    assert verify(b"x", platform="sgx", now=NITRO_AT).failed_step == "platform"
    assert verify(b"", platform="aws-nitro", now=NITRO_AT).failed_step == "structure"


@pytest.mark.parametrize(("evidence", "kw", "step", "message"), [
    ("text", {}, "parse", "evidence must be bytes"),
    (b"x" * (256 * 1024 + 1), {}, "structure", "evidence is 262145 bytes, limit 262144"),
    (b"x", {"nonce": b""}, "nonce", "nonce must be 1..64 bytes"),
    (b"x", {"nonce": b"n" * 65}, "nonce", "nonce must be 1..64 bytes"),
    (b"x", {"report_data": b"r" * 32}, "nonce", "report_data must be 64 bytes"),
    (b"x", {"now": NITRO_AT.replace(tzinfo=None)}, "platform", "now must be a timezone-aware datetime"),
])
def test_bad_arguments_fail_closed_at_a_named_step(evidence, kw: dict, step: str, message: str) -> None:
    result = verify(evidence, platform="aws-nitro", **{"now": NITRO_AT, **kw})
    assert (result.ok, result.failed_step, result.message) == (False, step, message)


def test_a_manifest_match_is_reported_with_the_reference_that_matched() -> None:
    doc = nitro_prod()
    facts = nitro_verify(doc).facts
    expected = manifest_for("aws-nitro", {"pcr0": facts["measurements"]["pcr0"]})
    matched = nitro_verify(doc, expected=expected)
    assert matched.ok and matched.facts["manifest_match"] == {
        "git_commit": "a" * 40, "image_digest": "sha256:" + "b" * 64,
        "reference": {"pcr0": facts["measurements"]["pcr0"]}}


# --------------------------------------------------------------------------------------------- sev-snp


def snp_verify(evidence: bytes, **kw) -> Result:
    return verify(evidence, platform="sev-snp", now=SNP_AT, **kw)


def test_snp_flipped_signature_byte_fails_signature() -> None:
    vcek = read("sev-snp/virtee_milan_vcek.der")
    assert snp_verify(snp_evidence(flip(snp_virtee_report(), 0x2A0 + 5), vcek)).failed_step == "signature"


def test_snp_flipped_measurement_byte_fails_signature() -> None:
    vcek = read("sev-snp/virtee_milan_vcek.der")
    assert snp_verify(snp_evidence(flip(snp_virtee_report(), 0x90), vcek)).failed_step == "signature"


def test_snp_flipped_vcek_byte_fails_chain() -> None:
    vcek = read("sev-snp/virtee_milan_vcek.der")
    assert snp_verify(snp_evidence(snp_virtee_report(), flip(vcek, len(vcek) - 5))).failed_step == "chain"


def test_snp_wrong_vcek_for_report_fails_signature() -> None:
    other = read("sev-snp/trustee_milan_vcek.der")
    assert snp_verify(snp_evidence(snp_virtee_report(), other)).failed_step == "signature"


def test_snp_wrong_root_fails_chain() -> None:
    genoa_only = Roots.from_pems(_pinned.AMD_GENOA_ARK, _pinned.AMD_GENOA_INTERMEDIATES)
    assert snp_verify(snp_virtee(), roots=genoa_only).failed_step == "chain"


def test_snp_vlek_outside_validity_fails_chain() -> None:
    assert verify(snp_trustee_vlek(), platform="sev-snp", now=SNP_AT - timedelta(days=365)).failed_step == "chain"


def test_snp_wrong_nonce_fails_nonce() -> None:
    assert snp_verify(snp_virtee(), nonce=b"not the nonce").failed_step == "nonce"
    assert snp_verify(snp_virtee(), report_data=bytes(64)).failed_step == "nonce"


def test_snp_measurement_not_in_manifest_fails_measurements() -> None:
    from .test_attestation_samples import VIRTEE_MEASUREMENT

    assert snp_verify(snp_virtee(), expected=manifest_for("sev-snp", {"measurement": VIRTEE_MEASUREMENT})).ok
    assert (
        snp_verify(snp_virtee(), expected=manifest_for("sev-snp", {"measurement": "11" * 48})).failed_step
        == "measurements"
    )


def test_snp_truncated_report_fails_structure_and_truncated_bundle_fails_parse() -> None:
    vcek = read("sev-snp/virtee_milan_vcek.der")
    assert snp_verify(snp_evidence(snp_virtee_report()[:-1], vcek)).failed_step == "structure"
    assert snp_verify(snp_virtee()[:-10]).failed_step == "parse"


# --------------------------------------------------------------------------------------------- azure / tdx / gcp


def test_azure_flipped_signature_fails_signature_and_claims_fail_signature() -> None:
    head, body, sig = azure_token().decode().split(".")
    bad_sig = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    token = f"{head}.{body}.{bad_sig}".encode()
    assert verify(token, platform="azure", now=AZURE_AT, roots=azure_roots()).failed_step == "signature"
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["x-ms-isolation-tee"]["x-ms-sevsnpvm-is-debuggable"] = True
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert (
        verify(f"{head}.{forged}.{sig}".encode(), platform="azure", now=AZURE_AT, roots=azure_roots()).failed_step
        == "signature"
    )


def test_azure_wrong_jwks_and_wrong_nonce() -> None:
    wrong = Roots(jwks={AZURE_ISSUER: {"keys": []}})
    assert verify(azure_token(), platform="azure", now=AZURE_AT, roots=wrong).failed_step == "chain"
    assert (
        verify(azure_token(), platform="azure", now=AZURE_AT, roots=azure_roots(), nonce=b"other").failed_step
        == "nonce"
    )
    m = manifest_for("azure", {"launch_measurement": "00" * 48})
    assert (
        verify(azure_token(), platform="azure", now=AZURE_AT, roots=azure_roots(), expected=m).failed_step
        == "measurements"
    )
    assert verify(azure_token()[:-40], platform="azure", now=AZURE_AT, roots=azure_roots()).failed_step in (
        "parse",
        "signature",
    )


def test_tdx_mutations() -> None:
    quote = read("tdx/dcapqvl_tdx_quote_v4.bin")
    collateral = read("tdx/dcapqvl_tdx_quote_v4_collateral.json").decode()
    assert verify(tdx_evidence(flip(quote, 600), collateral), platform="tdx", now=TDX_V4_AT).failed_step == "signature"
    assert (
        verify(tdx_evidence(flip(quote, 48 + 16 + 5), collateral), platform="tdx", now=TDX_V4_AT).failed_step
        == "signature"
    )
    assert verify(tdx_evidence(quote[:100], collateral), platform="tdx", now=TDX_V4_AT).failed_step == "parse"
    assert (
        verify(tdx_v4(), platform="tdx", now=TDX_V4_AT, roots=Roots.from_pems(_pinned.NITRO_ROOTS)).failed_step
        == "chain"
    )
    assert verify(tdx_v4(), platform="tdx", now=TDX_V4_AT, nonce=b"x").failed_step == "nonce"
    assert (
        verify(tdx_v4(), platform="tdx", now=TDX_V4_AT, expected=manifest_for("tdx", {"mrtd": "00" * 48})).failed_step
        == "measurements"
    )


def _tdx_bundle(**fields: object) -> bytes:
    bundle: dict[str, object] = {"quote": read("tdx/dcapqvl_tdx_quote_v4.bin"),
              "collateral": read("tdx/dcapqvl_tdx_quote_v4_collateral.json").decode()}
    bundle.update(fields)
    return cbor2.dumps({k: v for k, v in bundle.items() if v is not None})


@pytest.mark.parametrize(("evidence", "step", "message"), [
    (cbor2.dumps([1, 2]), "parse", "tdx evidence must be a CBOR map with a byte-string quote"),
    (_tdx_bundle(quote="text"), "parse", "tdx evidence must be a CBOR map with a byte-string quote"),
    (_tdx_bundle(collateral=None), "chain", "no DCAP collateral (tcb_info, qe_identity, CRLs) in the evidence"),
    (_tdx_bundle(collateral=b"{}"), "structure", "collateral must be JSON text of bounded size"),
    (_tdx_bundle(quote=b"q" * 47), "structure", "quote size out of bounds"),
    (_tdx_bundle(quote=b"\x03\x00" + bytes(46)), "structure", "not a TDX quote (version 3, tee_type 0x0)"),
    (_tdx_bundle(collateral="{}"), "structure", "collateral is not valid QuoteCollateralV3 JSON"),
])
def test_tdx_bundle_rules_are_named(evidence: bytes, step: str, message: str) -> None:
    result = verify(evidence, platform="tdx", now=TDX_V4_AT)
    assert (result.ok, result.failed_step) == (False, step)
    assert result.message.startswith(message)


def test_tdx_without_a_pinned_root_fails_chain() -> None:
    result = verify(tdx_v4(), platform="tdx", now=TDX_V4_AT, roots=Roots())
    assert (result.failed_step, result.message) == ("chain", "no pinned Intel SGX root configured")


def test_tdx_report_data_is_checked_against_the_binding_or_the_padded_nonce() -> None:
    good = verify(tdx_v4(), platform="tdx", now=TDX_V4_AT)
    assert good.ok
    report_data = good.facts["report_data"]
    assert verify(tdx_v4(), platform="tdx", now=TDX_V4_AT, report_data=report_data).ok
    other = bytes(64) if report_data != bytes(64) else b"\x01" * 64
    wrong = verify(tdx_v4(), platform="tdx", now=TDX_V4_AT, report_data=other)
    assert (wrong.failed_step, wrong.message) == ("nonce", "report_data differs from the expected binding")


def test_gcp_mutations() -> None:
    pb = read("gcp/gce-cos-85-nonce9009.pb")
    assert verify(pb, platform="gcp-vtpm", now=SNP_AT, nonce=b"\x90\x08").failed_step == "nonce"
    assert (
        verify(pb, platform="gcp-vtpm", now=SNP_AT, roots=Roots.from_pems(_pinned.NITRO_ROOTS)).failed_step == "chain"
    )
    assert verify(pb[:-7], platform="gcp-vtpm", now=SNP_AT).failed_step in ("parse", "structure")
    # the first quote's signature lives right after its TPMS_ATTEST; flip a byte deep inside the message
    sig_region = pb.index(bytes.fromhex("0014000b0100")) + 40  # TPMT_SIGNATURE RSASSA/SHA256, size 256
    assert verify(flip(pb, sig_region), platform="gcp-vtpm", now=SNP_AT).failed_step == "signature"
    m = manifest_for("gcp-vtpm", {"sha256:pcr0": "00" * 32})
    assert verify(pb, platform="gcp-vtpm", now=SNP_AT, expected=m).failed_step == "measurements"


# --------------------------------------------------------------------------------------------- no exception escapes

SAMPLES = {
    "aws-nitro": (nitro_prod, NITRO_AT, {}),
    "sev-snp": (snp_virtee, SNP_AT, {}),
    "azure": (azure_token, AZURE_AT, {"roots": None}),
    "gcp-vtpm": (lambda: read("gcp/gce-cos-85-nonce9009.pb"), SNP_AT, {}),
    "tdx": (tdx_v4, TDX_V4_AT, {}),
}
_CACHE: dict[str, bytes] = {}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    platform=st.sampled_from(sorted(SAMPLES)),
    edits=st.lists(
        st.tuples(st.integers(0, 2**20), st.integers(1, 255), st.sampled_from(["xor", "cut", "insert", "delete"])),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_samples_never_raise(platform: str, edits: list[tuple[int, int, str]]) -> None:
    make, when, _ = SAMPLES[platform]
    data = bytearray(_CACHE.setdefault(platform, make()))
    for pos, value, kind in edits:
        if not data:
            break
        i = pos % len(data)
        if kind == "xor":
            data[i] ^= value
        elif kind == "cut":
            del data[i:]
        elif kind == "insert":
            data[i:i] = bytes([value])
        else:
            del data[i]
    roots = azure_roots() if platform == "azure" else None
    result = verify(bytes(data), platform=platform, now=when, roots=roots, allow_debug=True)
    assert isinstance(result, Result)
    assert result.failed_step != "internal", result.message
    if not result.ok:
        assert result.failed_step is not None and result.message
