"""TDX evidence carries its DCAP collateral: configfs-tsm quote + PCS/PCCS collateral -> verify.

A real HTTP server on loopback (``tests/support/fake_pccs.py``) serves the real collateral of the
sample quote ``dcapqvl_tdx_quote_v4.bin`` at the Intel PCS v4 paths.  The fake configfs-tsm
tree follows Documentation/ABI/testing/configfs-tsm, as in test_attestation_evidence.py, and
returns that sample quote as ``outblob``.  The sample's certificates and collateral verify only
at the instant the testdata README gives (2025-06-19T10:32:27Z).  The sample quote cannot carry
our binding, so the end-to-end test verifies every step without a nonce, then shows that the
binding step, and only it, fails.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509

from teeprover.attestation import binding_digest, collect, default_roots, verify
from teeprover.attestation.evidence import Services, default_provider
from teeprover.attestation.evidence.pccs import (
    INTEL_PCS_URL,
    INTEL_ROOT_CA_CRL_URL,
    MAX_RESPONSE_BYTES,
    PccsCollateral,
    quote_platform,
)
from teeprover.attestation.evidence.tsm import ConfigfsTsmProvider
from teeprover.errors import Unavailable
from tests.support.fake_pccs import PCK_CRL, QE_IDENTITY, ROOT_CA_CRL, ROOT_CA_CRL_DER, TCB, FakePccs, Fault
from tests.support.params_mirror import dead_url

TDX = Path(__file__).resolve().parents[1] / "fixtures" / "attestation" / "tdx"
QUOTE = (TDX / "dcapqvl_tdx_quote_v4.bin").read_bytes()
COLLATERAL_TEXT = (TDX / "dcapqvl_tdx_quote_v4_collateral.json").read_text()
COLLATERAL = json.loads(COLLATERAL_TEXT)
VERIFY_AT = datetime(2025, 6, 19, 10, 32, 27, tzinfo=UTC)  # latest collateral issueDate (testdata README)
EARLIEST_NEXT_UPDATE = datetime(2025, 7, 19, 10, 0, 35, tzinfo=UTC)  # the PCK CRL's nextUpdate
MRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
SPKI = hashlib.sha256(b"tls key").digest()
HPKE = b"\x07" * 1216


@pytest.fixture()
def pccs() -> Iterator[FakePccs]:
    with FakePccs(COLLATERAL) as server:
        yield server


def tsm_tree(root: Path, outblob: bytes = QUOTE) -> Path:
    """A configfs-tsm report entry as the kernel lays it out, with the quote the TDX module returns."""
    tsm = root / "sys/kernel/config/tsm/report"
    entry = tsm / "teeprover-test"
    entry.mkdir(parents=True)
    (entry / "provider").write_text("tdx_guest\n")
    (entry / "generation").write_text("1\n")
    (entry / "outblob").write_bytes(outblob)
    return tsm


def tdx_provider(tsm: Path, source: PccsCollateral | None) -> ConfigfsTsmProvider:
    return ConfigfsTsmProvider("tdx", str(tsm), entry="teeprover-test", collateral=source)


# --------------------------------------------------------------------------------------------- end to end


def test_tdx_evidence_from_configfs_tsm_and_pccs_verifies_up_to_date(tmp_path: Path, pccs: FakePccs) -> None:
    tsm = tsm_tree(tmp_path)
    response = collect("tdx", b"nn", SPKI, HPKE, VERIFY_AT, provider=tdx_provider(tsm, PccsCollateral(pccs.url)))
    assert response["error"] is None, response["error"]
    assert response["format"] == "tdx-quote-cbor"
    rd = binding_digest(nonce=b"nn", tls_spki_sha256=SPKI, hpke_public_key=HPKE,
                        timestamp_ms=response["metadata"]["timestamp_ms"])
    assert (tsm / "teeprover-test/inblob").read_bytes() == rd  # what the TDX module was asked to sign

    evidence = base64.b64decode(response["attestation"])
    bundle = cbor2.loads(evidence)
    assert set(bundle) == {"quote", "collateral"} and bundle["quote"] == QUOTE

    result = verify(evidence, platform="tdx", now=VERIFY_AT)  # pinned Intel SGX root, no binding asked
    assert result.ok, result
    assert result.facts["tcb_status"] == "UpToDate" and result.facts["advisory_ids"] == []
    assert result.facts["mrtd"] == MRTD and result.facts["debug"] is False


def test_sample_quote_fails_only_at_binding_and_expires(tmp_path: Path, pccs: FakePccs) -> None:
    response = collect("tdx", b"nn", SPKI, HPKE, VERIFY_AT,
                       provider=tdx_provider(tsm_tree(tmp_path), PccsCollateral(pccs.url)))
    evidence = base64.b64decode(response["attestation"])
    rd = bytes.fromhex(response["metadata"]["report_data"])
    bound = verify(evidence, platform="tdx", now=VERIFY_AT, report_data=rd)
    # The sample quote was signed elsewhere: every DCAP step passes, our binding is not in it.
    assert (bound.ok, bound.failed_step, bound.facts["tcb_status"]) == (False, "nonce", "UpToDate")
    later = verify(evidence, platform="tdx", now=EARLIEST_NEXT_UPDATE + timedelta(days=400))
    assert (later.ok, later.failed_step) == (False, "chain")


def test_without_collateral_source_there_is_no_tdx_evidence(tmp_path: Path) -> None:
    response = collect("tdx", b"nn", None, None, VERIFY_AT, provider=tdx_provider(tsm_tree(tmp_path), None))
    assert response["attestation"] is None and "collateral" in response["error"]


def test_quote_that_is_not_tdx_is_an_error_not_evidence(tmp_path: Path, pccs: FakePccs) -> None:
    provider = tdx_provider(tsm_tree(tmp_path, outblob=b"\x04\x00" + bytes(1000)), PccsCollateral(pccs.url))
    response = collect("tdx", b"nn", None, None, VERIFY_AT, provider=provider)
    assert response["attestation"] is None and "FMSPC" in response["error"]
    assert pccs.requests() == []


# --------------------------------------------------------------------------------------------- what is fetched


def test_fetched_collateral_is_the_sample_collateral(pccs: FakePccs) -> None:
    text = PccsCollateral(pccs.url).collateral_json(QUOTE, now=VERIFY_AT)
    assert json.loads(text) == COLLATERAL
    # Intel's signatures cover these exact bytes, so they must never be re-serialised.
    assert json.loads(text)["tcb_info"] == COLLATERAL["tcb_info"]
    assert json.loads(text)["qe_identity"] == COLLATERAL["qe_identity"]
    assert pccs.requests() == [
        "/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
        "/tdx/certification/v4/tcb?fmspc=B0C06F000000&update=standard",
        "/tdx/certification/v4/qe/identity?update=standard",
        "/sgx/certification/v4/rootcacrl",
    ]


def test_fetch_agrees_with_dcap_qvl_get_collateral(pccs: FakePccs) -> None:
    import dcap_qvl

    async def theirs() -> str:
        return str((await dcap_qvl.get_collateral(pccs.url, QUOTE)).to_json())

    expected = json.loads(asyncio.run(theirs()))
    expected.pop("pck_certificate_chain", None)  # dcap-qvl attaches the quote's own chain; the quote has it
    assert json.loads(PccsCollateral(pccs.url).collateral_json(QUOTE, now=VERIFY_AT)) == expected


def test_quote_platform_is_read_from_the_pck_certificate() -> None:
    assert quote_platform(QUOTE) == ("B0C06F000000", "platform")


def test_root_ca_crl_from_pcs_is_the_pinned_roots_distribution_point(pccs: FakePccs) -> None:
    (root,) = default_roots("tdx").anchors
    points = root.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for p in points for n in p.full_name or []] == [INTEL_ROOT_CA_CRL_URL]
    assert PccsCollateral(INTEL_PCS_URL).root_ca_crl_url == INTEL_ROOT_CA_CRL_URL
    assert PccsCollateral(f"{pccs.url}/sgx/certification/v4/").base_url == pccs.url
    assert PccsCollateral(pccs.url).root_ca_crl_url == f"{pccs.url}/sgx/certification/v4/rootcacrl"
    # A DER root CA CRL (what the distribution point serves) gives the same collateral as PCCS's hex.
    der = PccsCollateral(pccs.url, root_ca_crl_url=pccs.url + ROOT_CA_CRL_DER).collateral_json(QUOTE, now=VERIFY_AT)
    assert json.loads(der) == COLLATERAL


def test_bad_pccs_url_is_refused() -> None:
    with pytest.raises(Unavailable):
        PccsCollateral("ftp://pccs.example")


# --------------------------------------------------------------------------------------------- caching


def test_second_attestation_is_served_from_the_cache(tmp_path: Path, pccs: FakePccs) -> None:
    provider = tdx_provider(tsm_tree(tmp_path), PccsCollateral(pccs.url))
    first = collect("tdx", b"n1", None, None, VERIFY_AT, provider=provider)
    fetched = len(pccs.requests())
    second = collect("tdx", b"n2", None, None, VERIFY_AT + timedelta(minutes=5), provider=provider)
    assert fetched == 4 and len(pccs.requests()) == fetched  # no request for the second one
    assert first["error"] is None and second["error"] is None
    assert cbor2.loads(base64.b64decode(second["attestation"]))["collateral"] == \
        cbor2.loads(base64.b64decode(first["attestation"]))["collateral"]


def test_cache_expires_at_max_age_and_at_next_update(pccs: FakePccs) -> None:
    source = PccsCollateral(pccs.url, max_age=timedelta(hours=1))
    source.collateral_json(QUOTE, now=VERIFY_AT)
    source.collateral_json(QUOTE, now=VERIFY_AT + timedelta(minutes=59))
    assert len(pccs.requests()) == 4
    source.collateral_json(QUOTE, now=VERIFY_AT + timedelta(hours=1))  # max_age reached: fetched again
    assert len(pccs.requests()) == 8

    long_lived = PccsCollateral(pccs.url, max_age=timedelta(days=365))
    long_lived.collateral_json(QUOTE, now=EARLIEST_NEXT_UPDATE - timedelta(seconds=2))
    long_lived.collateral_json(QUOTE, now=EARLIEST_NEXT_UPDATE - timedelta(seconds=1))
    assert len(pccs.requests()) == 12
    long_lived.collateral_json(QUOTE, now=EARLIEST_NEXT_UPDATE)  # the PCK CRL's nextUpdate: stale
    assert len(pccs.requests()) == 16


def test_stale_collateral_is_returned_but_not_cached(pccs: FakePccs) -> None:
    source = PccsCollateral(pccs.url)
    stale_now = EARLIEST_NEXT_UPDATE + timedelta(days=1)
    assert json.loads(source.collateral_json(QUOTE, now=stale_now)) == COLLATERAL  # the verifier will refuse it
    source.collateral_json(QUOTE, now=stale_now)
    assert len(pccs.requests()) == 8


# --------------------------------------------------------------------------------------------- failures

_TCB_OTHER_PLATFORM = json.dumps({"tcbInfo": {**json.loads(COLLATERAL["tcb_info"]), "fmspc": "00906ED50000"},
                                  "signature": COLLATERAL["tcb_info_signature"]}).encode()


@pytest.mark.parametrize(
    ("path", "fault", "expected"),
    [
        (TCB, Fault(status=404), ["/tdx/certification/v4/tcb?fmspc=B0C06F000000", "HTTP 404", "FakeFault"]),
        (PCK_CRL, Fault(status=500), ["/sgx/certification/v4/pckcrl?ca=platform", "HTTP 500"]),
        (QE_IDENTITY, Fault(body=b"<html>gateway</html>"), ["/tdx/certification/v4/qe/identity", "enclaveIdentity"]),
        (PCK_CRL, Fault(body=b"not a crl"), ["/sgx/certification/v4/pckcrl", "platform CRL"]),
        (ROOT_CA_CRL, Fault(body=b"\x00" * (MAX_RESPONSE_BYTES + 1)), ["/rootcacrl", "limit"]),
        (TCB, Fault(body=_TCB_OTHER_PLATFORM), ["/tdx/certification/v4/tcb", "00906ED50000", "B0C06F000000"]),
    ],
    ids=["tcb-404", "pckcrl-500", "qe-identity-garbage", "pckcrl-garbage", "oversized", "wrong-fmspc"],
)
def test_pccs_failure_is_a_clear_error_in_the_attestation_response(
    tmp_path: Path, pccs: FakePccs, path: str, fault: Fault, expected: list[str]
) -> None:
    pccs.fault(path, fault)
    provider = tdx_provider(tsm_tree(tmp_path), PccsCollateral(pccs.url))
    response = collect("tdx", b"nn", None, None, VERIFY_AT, provider=provider)
    assert response["attestation"] is None
    for text in [pccs.url, *expected]:
        assert text in response["error"], response["error"]

    pccs.fault(path, None)  # failures are not cached: the next request fetches again and succeeds
    healed = collect("tdx", b"nn", None, None, VERIFY_AT, provider=provider)
    assert healed["error"] is None, healed["error"]


def test_missing_issuer_chain_header_is_an_error(tmp_path: Path, pccs: FakePccs) -> None:
    body = ('{"tcbInfo":' + COLLATERAL["tcb_info"] + ',"signature":"' + COLLATERAL["tcb_info_signature"] + '"}')
    pccs.fault(TCB, Fault(body=body.encode(), keep_headers=False))
    response = collect("tdx", None, None, None, VERIFY_AT,
                       provider=tdx_provider(tsm_tree(tmp_path), PccsCollateral(pccs.url)))
    assert response["attestation"] is None and "TCB-Info-Issuer-Chain" in response["error"]


def test_slow_pccs_times_out_with_the_url(tmp_path: Path, pccs: FakePccs) -> None:
    pccs.fault(QE_IDENTITY, Fault(delay=5.0))  # cut short when the fake stops
    provider = tdx_provider(tsm_tree(tmp_path), PccsCollateral(pccs.url, timeout=0.3))
    response = collect("tdx", b"nn", None, None, VERIFY_AT, provider=provider)
    assert response["attestation"] is None
    assert f"{pccs.url}/tdx/certification/v4/qe/identity" in response["error"] and "timed out" in response["error"]


def test_pccs_that_answers_each_request_but_too_slowly_overall_is_an_error(pccs: FakePccs) -> None:
    pccs.fault(TCB, Fault(delay=0.5))  # each request is within its timeout; the whole fetch is not
    with pytest.raises(Unavailable, match="too slow"):
        PccsCollateral(pccs.url, timeout=5, deadline=0.2).collateral_json(QUOTE, now=VERIFY_AT)


def test_unreachable_pccs_is_an_error(tmp_path: Path) -> None:
    base = dead_url().rstrip("/")
    response = collect("tdx", b"nn", None, None, VERIFY_AT,
                       provider=tdx_provider(tsm_tree(tmp_path), PccsCollateral(base, timeout=2)))
    assert response["attestation"] is None and base in response["error"] and "reached" in response["error"]


# --------------------------------------------------------------------------------------------- wiring


def test_default_provider_fetches_collateral_from_the_configured_pccs(tmp_path: Path, pccs: FakePccs) -> None:
    tsm_tree(tmp_path)
    provider = default_provider("tdx", str(tmp_path), Services(pccs_url=pccs.url))
    assert isinstance(provider, ConfigfsTsmProvider)
    assert isinstance(provider.collateral, PccsCollateral) and provider.collateral.base_url == pccs.url
    again = default_provider("tdx", str(tmp_path), Services(pccs_url=pccs.url))
    assert isinstance(again, ConfigfsTsmProvider) and again.collateral is provider.collateral  # one cache

    unconfigured = default_provider("tdx", str(tmp_path), Services(pccs_url=""))
    assert isinstance(unconfigured, ConfigfsTsmProvider) and unconfigured.collateral is None
