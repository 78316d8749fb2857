"""Every real sample in tests/fixtures/attestation verifies at its documented instant and
reproduces the README's expected facts; each one fails when verified now (expired)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from teeprover.attestation import Roots, snp_evidence, tdx_evidence, verify

# Real samples with their certificate chains, pinned by SHA256SUMS (README.md there names the sources).
TESTDATA = Path(__file__).resolve().parents[1] / "fixtures" / "attestation"
NOW = datetime.now(UTC)
AZURE_ISSUER = "https://sharedeus2.eus2.attest.azure.net"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read(rel: str) -> bytes:
    return (TESTDATA / rel).read_bytes()


def nitro_prod() -> bytes:
    return base64.b64decode(read("nitro/blocky_prod_2024-09-07.b64"))


def nitro_debug() -> bytes:
    return base64.b64decode(read("nitro/blocky_debug_2024-09-07.b64"))


def cape_debug() -> bytes:
    return read("nitro/cape_debug_2022-07-14.cbor")


def snp_virtee_report() -> bytes:
    return bytes.fromhex(read("sev-snp/virtee_milan_report.hex").decode().strip())


def snp_virtee() -> bytes:
    return snp_evidence(snp_virtee_report(), read("sev-snp/virtee_milan_vcek.der"))


def snp_trustee_vcek() -> bytes:
    return snp_evidence(read("sev-snp/trustee_milan_vcek_report.bin"), read("sev-snp/trustee_milan_vcek.der"))


def snp_trustee_vlek() -> bytes:
    return snp_evidence(read("sev-snp/trustee_milan_vlek_report.bin"), read("sev-snp/trustee_milan_vlek.der"))


def tdx_v4() -> bytes:
    return tdx_evidence(read("tdx/dcapqvl_tdx_quote_v4.bin"), read("tdx/dcapqvl_tdx_quote_v4_collateral.json").decode())


def tdx_v5() -> bytes:
    return tdx_evidence(
        read("tdx/dcapqvl_tdx_quote_v5_outdated.bin"),
        read("tdx/dcapqvl_tdx_quote_v5_outdated_collateral.json").decode(),
    )


def azure_token() -> bytes:
    return read("azure/midnight_proof31_maa_sevsnp_cvm.jwt").strip()


def azure_roots() -> Roots:
    return Roots(jwks={AZURE_ISSUER: json.loads(read("azure/maa_sharedeus2_jwks_reconstructed.json"))})


NITRO_AT = at("2024-09-07T14:37:40Z")
NITRO_DEBUG_AT = at("2024-09-07T14:38:07Z")
CAPE_AT = at("2022-07-14T21:46:04Z")
SNP_AT = at("2025-06-01T00:00:00Z")
TDX_V4_AT = at("2025-06-19T10:32:27Z")
TDX_V5_AT = at("2026-02-18T10:58:51Z")
AZURE_AT = at("2025-12-15T20:00:00Z")

PCR0 = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
PCR1 = "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa"
PCR2 = "d5dcbdea0aa39c802f9d55ced2ea6e4d74ecec5f08fe40c508882639c9090642669106a062a3e24ee2805a3024b9b75c"
PCR4 = "45706d7b621e4620a332e147a5ddb000b049f73d47d3e61f6b03d2069152d4df6a4a786ad1c10102b955799a9dc96b44"


# --------------------------------------------------------------------------------------------- nitro


def test_nitro_prod_verifies_at_timestamp_with_expected_facts() -> None:
    result = verify(nitro_prod(), platform="aws-nitro", now=NITRO_AT)
    assert result.ok, result
    f = result.facts
    assert f["module_id"] == "i-0a22e5c5f24d22174-enc0191cceb4289903f"
    assert f["digest"] == "SHA384" and f["timestamp_ms"] == 1725719859545
    assert f["timestamp"] == "2024-09-07T14:37:39.545000Z"
    assert len(f["pcrs"]) == 16 and all(len(v) == 96 for v in f["pcrs"].values())
    nonzero = {i: v for i, v in f["pcrs"].items() if int(v, 16)}
    assert nonzero == {0: PCR0, 1: PCR1, 2: PCR2, 4: PCR4}
    assert (
        base64.b64encode(bytes.fromhex(f["pcrs"][0])).decode()
        == "5ypGyoCiYPsEShJUQvDH4zGBO8uvlyTZ84V3WJknZvLWVxCieqlK45Sd1U58n+hq"
    )
    assert f["public_key"] == f["user_data"] == f["nonce"] == b"\x01" * 1024
    assert f["cabundle_len"] == 4
    assert f["root_sha256"] == "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
    assert "ec28cbbaae08094d.us-east-1" in f["chain"][3] and "68a8a693dd2153f6.zonal.us-east-1" in f["chain"][2]
    assert f["debug"] is False


def test_nitro_prod_verifies_until_leaf_expiry_and_not_after() -> None:
    assert verify(nitro_prod(), platform="aws-nitro", now=at("2024-09-07T17:37:39Z")).ok
    late = verify(nitro_prod(), platform="aws-nitro", now=at("2024-09-07T17:37:40Z"))
    assert (late.ok, late.failed_step) == (False, "chain")


@pytest.mark.parametrize("sample", [nitro_prod, nitro_debug, cape_debug])
def test_nitro_samples_fail_now_because_certificates_expired(sample) -> None:
    result = verify(sample(), platform="aws-nitro", now=NOW, allow_debug=True)
    assert (result.ok, result.failed_step) == (False, "chain")
    assert "not valid at" in result.message


def test_nitro_debug_sample_is_cryptographically_valid_but_refused_by_policy() -> None:
    result = verify(nitro_debug(), platform="aws-nitro", now=NITRO_DEBUG_AT)
    assert (result.ok, result.failed_step) == (False, "policy")
    f = result.facts
    assert f["module_id"] == "i-0a22e5c5f24d22174-enc0191ccebaf8feaba" and f["timestamp_ms"] == 1725719886508
    assert all(int(f["pcrs"][i], 16) == 0 for i in (0, 1, 2)) and f["pcrs"][4] == PCR4
    assert f["user_data"] == b"\x01" * 1024 and f["debug"] is True
    assert verify(nitro_debug(), platform="aws-nitro", now=NITRO_DEBUG_AT, allow_debug=True).ok


def test_cape_debug_sample_null_user_data_is_absent() -> None:
    result = verify(
        cape_debug(), platform="aws-nitro", now=CAPE_AT, allow_debug=True, nonce=bytes.fromhex("d7ddfbf3cdf9")
    )
    assert result.ok, result
    f = result.facts
    assert f["module_id"] == "i-029e0eacb65267caa-enc0181fe7484f74a24" and f["timestamp_ms"] == 1657831567740
    assert (
        f["pcrs"][4]
        == "28c7ea32aec0384948c7b6373fb6ec5402789e28000f3bb002ecb97b96a15f583db4785d9d6bb393a8245d1bd6d98832"
    )
    assert f["public_key"] == bytes.fromhex("4effb1110a91e7bc69c5db1cd7451e3f921c4b2a93b9575eeddd2a8357cf3b23")
    assert f["user_data"] is None and f["nonce"] == bytes.fromhex("d7ddfbf3cdf9")
    assert verify(cape_debug(), platform="aws-nitro", now=CAPE_AT).failed_step == "policy"


# --------------------------------------------------------------------------------------------- sev-snp

VIRTEE_MEASUREMENT = "7a1e5c266c0108dbc9bb94fa926951320940915d0aafb42464bd88b579ea158d3e1a0dc39b2c60bd95b9c480cd81841f"


def test_snp_virtee_milan_report_facts() -> None:
    result = verify(snp_virtee(), platform="sev-snp", now=SNP_AT)
    assert result.ok, result
    f = result.facts
    assert (f["version"], f["policy"], f["vmpl"], f["signature_algo"], f["key_info"]) == (2, 0x30000, 0, 1, 0)
    assert f["measurement"] == VIRTEE_MEASUREMENT
    assert f["report_data"].hex() == (
        "d447b55d197491bfe15cf298f9de9986b7a7c4be2468b4f6e2d53b71d7c645810b0f2cdfca0040433be063fc1a8293f0f3f8dae7b79fecb3d1cd82bd6a93ebfd"
    )
    assert f["reported_tcb"] == "0x7308000000000003"
    assert f["tcb"] == {"bl": 3, "tee": 0, "snp": 8, "ucode": 115} == f["vek_tcb"]
    assert f["chip_id"].startswith("d49554ec") and f["chip_id"].endswith("1eb6")
    assert f["product"] == "Milan-B0" and f["signing_key"] == "VCEK" and f["debug"] is False
    assert f["root_sha256"] == "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd"
    assert any("serial number" in w for w in f["warnings"])  # VCEK serial 0: recorded, not raised


def test_snp_trustee_vcek_report_facts() -> None:
    result = verify(snp_trustee_vcek(), platform="sev-snp", now=SNP_AT)
    assert result.ok, result
    f = result.facts
    assert (f["version"], f["policy"], f["guest_svn"], f["vmpl"]) == (2, 0x3001F, 4, 0)
    assert (
        f["measurement"]
        == "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"
    )
    assert f["report_data"] == bytes.fromhex(
        "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2"
    ) + bytes(32)
    assert f["reported_tcb"] == "0x7308000000000003"
    # trustee's report_data is a 32-byte nonce zero-padded: the nonce check accepts it
    assert verify(snp_trustee_vcek(), platform="sev-snp", now=SNP_AT, nonce=f["report_data"][:32]).ok


def test_snp_trustee_vlek_report_facts() -> None:
    result = verify(snp_trustee_vlek(), platform="sev-snp", now=SNP_AT)
    assert result.ok, result
    f = result.facts
    assert (f["version"], f["key_info"], f["signing_key"], f["vmpl"]) == (3, 4, "VLEK", 1)
    assert f["chip_id"] == "00" * 64 and f["cpuid"] == "19 01 01"
    assert f["reported_tcb"] == "0xd918000000000004" and f["tcb"] == {"bl": 4, "tee": 0, "snp": 24, "ucode": 217}
    assert (
        f["measurement"]
        == "8922ebbdd00ec2c541f36a6e7a82a8773a7accb451ed67bc94e740dbe92c93c4e8c9af857f5ceeb5a493df2a570d7bf0"
    )
    assert f["csp_id"] == "CN=cc-us-east-2.amazonaws.com"
    assert "SEV-VLEK-Milan" in f["chain"][1]


@pytest.mark.parametrize("sample", [snp_virtee, snp_trustee_vcek, snp_trustee_vlek])
def test_snp_samples_fail_now(sample) -> None:
    # The VLEK expired 2025-12-10; the VCEKs are valid until 2030, so "now" only fails for the VLEK.
    result = verify(sample(), platform="sev-snp", now=NOW)
    if sample is snp_trustee_vlek:
        assert (result.ok, result.failed_step) == (False, "chain")
    else:
        assert result.ok


def test_snp_turin_chain_verifies_to_pinned_turin_ark() -> None:
    from teeprover.attestation import _x509
    from teeprover.attestation.roots import default_roots
    from teeprover.attestation.snp import vek_info

    roots = default_roots("sev-snp")
    with pytest.warns(Warning):
        vcek = _x509.load_der(read("sev-snp/virtee_turin_vcek.der"))
    path = _x509.build_chain(vcek, roots.intermediates, roots.anchors, at("2025-01-01T00:00:00Z"))
    assert _x509.fingerprint(path[-1]) == "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"
    info = vek_info(vcek)
    assert info["product"] == "Turin" and info["hwid"] == bytes.fromhex("1e550a8ee5cf9f4d") and "fmc" in info["tcb"]


# --------------------------------------------------------------------------------------------- tdx


def test_tdx_v4_quote_up_to_date() -> None:
    result = verify(tdx_v4(), platform="tdx", now=TDX_V4_AT)
    assert result.ok, result
    f = result.facts
    assert (
        f["mrtd"] == "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    )
    assert (
        f["rtmr0"] == "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0"
    )
    assert f["report_data"].hex().startswith("9a9d48e7f6799642") and f["report_data"].hex().endswith("2b523f20")
    assert f["tee_tcb_svn"].startswith("06010300") and f["td_attributes"] == "0000001000000000"
    assert (f["tcb_status"], f["advisory_ids"], f["debug"]) == ("UpToDate", [], False)


def test_tdx_v4_fails_now_with_expired_crl() -> None:
    result = verify(tdx_v4(), platform="tdx", now=NOW)
    assert (result.ok, result.failed_step) == (False, "chain") and "CrlExpired" in result.message


def test_tdx_v5_outdated_has_no_matching_tcb_level() -> None:
    result = verify(tdx_v5(), platform="tdx", now=TDX_V5_AT)
    assert (result.ok, result.failed_step) == (False, "tcb") and "No matching TCB level" in result.message


# --------------------------------------------------------------------------------------------- azure


def test_azure_maa_token_facts() -> None:
    result = verify(azure_token(), platform="azure", now=AZURE_AT, roots=azure_roots(), nonce=b"midnight-srs")
    assert result.ok, result
    f = result.facts
    assert (f["issuer"], f["iat"], f["nbf"], f["exp"]) == (AZURE_ISSUER, 1765826648, 1765826648, 1765855448)
    assert (
        f["attestation_type"] == "azurevm"
        and f["vm_id"] == "ABD9EA99-D837-4F68-AD3E-C87C88006AFA"
        and f["secureboot"] is True
    )
    assert (f["tee_type"], f["compliance_status"]) == ("sevsnpvm", "azure-compliant-cvm")
    assert (
        f["measurement"]
        == "6a063be9dd79f6371c842e480f8dc3b5c725961344e57130e88c5adf49e8f7f6c79b75a5eb77fc769959f4aeb2f9401e"
    )
    assert (f["microcode_svn"], f["snpfw_svn"], f["is_debuggable"], f["vmpl"]) == (219, 24, False, 0)
    assert f["report_data"] == "a62ad2715a9b95b24811cc64ceba2b5a13341160da8c446100142f3341eb7e45" + "00" * 32
    assert f["client_nonce"] == "bWlkbmlnaHQtc3Jz"


def test_azure_token_fails_now_as_expired() -> None:
    result = verify(azure_token(), platform="azure", now=NOW, roots=azure_roots())
    assert (result.ok, result.failed_step) == (False, "freshness")


def test_azure_without_allow_listed_issuer_fails_chain() -> None:
    result = verify(azure_token(), platform="azure", now=AZURE_AT)  # default: no issuer trusted
    assert (result.ok, result.failed_step) == (False, "chain")


# --------------------------------------------------------------------------------------------- gcp


@pytest.mark.parametrize(("name", "extra"), [("gce-cos-85-nonce9009.pb", "9009"), ("gce-cos-85-no-nonce.pb", "")])
def test_gcp_vtpm_attestation_facts(name: str, extra: str) -> None:
    nonce = bytes.fromhex(extra) if extra else None
    result = verify(read(f"gcp/{name}"), platform="gcp-vtpm", now=NOW, nonce=nonce)  # valid until 2051
    assert result.ok, result
    f = result.facts
    assert [q["bank"] for q in f["quotes"]] == ["sha1", "sha256", "sha384"]
    assert all(q["pcrs"] == list(range(24)) and q["extra_data"] == extra for q in f["quotes"])
    sha256 = f["pcrs"]["sha256"]
    assert sha256[0] == "0f35c214608d93c7a6e68ae7359b4a8be5a0e99eea9107ece427c4dea4e439cf"
    assert sha256[4].startswith("d690bdac") and sha256[4].endswith("0491")
    assert sha256[7].startswith("3365d7fa") and sha256[7].endswith("4793")
    assert "tpm_ek_v1_cloud_host-signer" in f["chain"][1] and "root-signer" in f["chain"][2]
    assert any("Attribute's length" in w for w in f["warnings"])
