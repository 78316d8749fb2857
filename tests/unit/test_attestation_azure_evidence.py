"""Azure CVM evidence: vTPM HCL report -> IMDS VCEK chain -> MAA SevSnpVm token, against loopback fakes.

The provider talks to ``tests.support.fake_tpm.FakeTpm`` through the real ``tpm.Tpm`` client.
The fake paravisor hooks the TPM's NV writes and reacts to a write of NV 0x01400002 like
OpenHCL: it builds runtime data carrying the written user data, an SNP report (real 1184-byte
layout, unsigned) whose report_data is SHA-256 of that runtime data, and stores the HCL report
in NV 0x01400001.  ``FakeMaa`` / ``FakeImds`` (tests/support/fake_maa.py) check requests like
the real services.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teeprover.attestation import Roots, binding_digest, collect, verify
from teeprover.attestation.evidence import FORMATS, Services, default_provider
from teeprover.attestation.evidence.azure import (
    HCL_REPORT_NV_INDEX,
    HCL_USER_DATA_NV_INDEX,
    AzureProvider,
    HclReport,
    build_hcl_report,
    check_hcl_report,
    maa_request,
    parse_hcl_report,
)
from teeprover.attestation.snp import POLICY_DEBUG, REPORT_SIZE
from teeprover.attestation.tpm import (
    TPMA_NV_OWNERWRITE,
    Tpm,
    TPM_CC_NV_DefineSpace,
    TPM_CC_NV_ReadPublic,
    TPM_CC_NV_Write,
)
from tests.support.fake_maa import FAKE_CHAIN, FAKE_VCEK, FakeImds, FakeMaa
from tests.support.fake_tpm import RC_NV_AUTHORIZATION, FakeTpm
from tests.support.params_mirror import dead_url

SPKI = hashlib.sha256(b"tls key").digest()
HPKE = b"\x07" * 1216
MEASUREMENT = bytes(range(48))
NV_REPORT_SIZE = 2600  # the paravisor's NV index is larger than the report; the rest is zeros


def snp_report(report_data: bytes, *, debug: bool = False) -> bytes:
    """An SNP ATTESTATION_REPORT in the real layout (the signature is left zero)."""
    report = bytearray(REPORT_SIZE)
    struct.pack_into("<IIQ", report, 0x00, 2, 10, 0x30000 | (POLICY_DEBUG if debug else 0))
    struct.pack_into("<II", report, 0x30, 0, 1)  # vmpl 0, ECDSA P-384 with SHA-384
    report[0x50:0x90] = report_data
    report[0x90:0xC0] = MEASUREMENT
    struct.pack_into("<Q", report, 0x180, 0xDB18000000000004)  # reported_tcb: bl 4, snp 24, ucode 219
    report[0x1A0:0x1E0] = b"\xc1" * 64
    return bytes(report)


class Paravisor:
    """Regenerates the HCL report when the user-data index is written (``stale``: it never does;
    ``lag``: only after that many reads of the report have still seen the old one)."""

    def __init__(self, *, debug: bool = False, stale: bool = False, hash_ok: bool = True, lag: int = 0) -> None:
        self.debug, self.stale, self.hash_ok, self.lag = debug, stale, hash_ok, lag
        self.writes = 0

    def runtime_data(self, user_data: bytes) -> bytes:
        jwk = {"e": "AQAB", "kty": "RSA", "n": "obiimwAAT0HvdBls1zt59"}
        return json.dumps({
            "keys": [dict(jwk, kid="HCLAkPub", key_ops=["sign"]), dict(jwk, kid="HCLEkPub", key_ops=["encrypt"])],
            "vm-configuration": {"console-enabled": True, "secure-boot": True, "tpm-enabled": True,
                                 "vmUniqueId": "ABD9EA99-D837-4F68-AD3E-C87C88006AFA"},
            "user-data": user_data.hex().upper(),
        }, separators=(",", ":")).encode()

    def report(self, user_data: bytes) -> bytes:
        runtime = self.runtime_data(user_data)
        digest = hashlib.sha256(runtime if self.hash_ok else b"other").digest() + bytes(32)
        return build_hcl_report(snp_report(digest, debug=self.debug), runtime, padded_size=NV_REPORT_SIZE)

    def attach(self, fake: FakeTpm) -> FakeTpm:
        fake.nv_preload(HCL_REPORT_NV_INDEX, self.report(bytes(64)))  # the boot-time report

        pending: list[bytes] = []
        reads = [0]

        def on_nv_write(index: int, data: bytes) -> None:
            self.writes += 1
            if index == HCL_USER_DATA_NV_INDEX and not self.stale:
                pending[:] = [self.report(data)]
                reads[0] = 0

        def on_command(code: int) -> None:
            # A read of the report starts with NV_ReadPublic; the refresh lands before its NV_Reads.
            if code == TPM_CC_NV_ReadPublic and pending:
                reads[0] += 1
                if reads[0] > self.lag:
                    fake.nv_preload(HCL_REPORT_NV_INDEX, pending.pop())

        fake.on_nv_write = on_nv_write
        fake.on_command = on_command
        return fake


@pytest.fixture()
def imds() -> Iterator[FakeImds]:
    with FakeImds() as server:
        yield server


@pytest.fixture()
def maa() -> Iterator[FakeMaa]:
    with FakeMaa() as server:
        yield server


def provider_for(maa_url: str, imds_url: str, paravisor: Paravisor | None = None, *, fake: FakeTpm | None = None,
                 **options: Any) -> AzureProvider:
    vtpm = (paravisor or Paravisor()).attach(fake or FakeTpm())
    return AzureProvider(Tpm(vtpm), maa_url=maa_url, imds_url=imds_url, retry_delay=0, **options)


def collected(provider: AzureProvider, nonce: bytes | None = b"client nonce") -> tuple[dict[str, Any], bytes]:
    now = datetime.now(UTC)  # the fake MAA stamps iat/nbf/exp with the real clock
    response = collect("azure", nonce, SPKI, HPKE, now, provider=provider)
    binding = binding_digest(nonce=nonce, tls_spki_sha256=SPKI, hpke_public_key=HPKE,
                             timestamp_ms=response["metadata"]["timestamp_ms"])
    return response, binding


def evidence_of(response: dict[str, Any]) -> bytes:
    assert response["error"] is None, response["error"]
    return base64.b64decode(response["attestation"])


def claims_of(token: bytes) -> dict[str, Any]:
    body = token.split(b".")[1]
    parsed: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
    return parsed


# --------------------------------------------------------------------------------------------- HCL report


def test_hcl_report_layout_is_pinned_and_round_trips() -> None:
    runtime = b'{"user-data":"AB"}'
    raw = build_hcl_report(snp_report(b"\x01" * 64), runtime, padded_size=2000)
    assert len(raw) == 2000 and raw[:4] == b"HCLA" and raw[1236 + len(runtime):] == bytes(2000 - 1236 - len(runtime))
    assert struct.unpack_from("<5I", raw, 1216) == (20 + len(runtime), 2, 2, 1, len(runtime))
    report = parse_hcl_report(raw)
    assert report.hw_report == raw[32:1216] and report.hw_report[0x50:0x90] == b"\x01" * 64
    assert (report.report_type, report.hash_type, report.runtime_data) == (2, 1, runtime)
    assert report.user_data == b"\xab"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw[:1235], "shorter than"),
        (lambda raw: b"XXXX" + raw[4:], "not 'HCLA'"),
        (lambda raw: raw[:1232] + struct.pack("<I", 10_000) + raw[1236:], "exceeds"),
    ],
)
def test_parse_hcl_report_rejects_malformed(mutate: Callable[[bytes], bytes], message: str) -> None:
    raw = Paravisor().report(b"\x05" * 64)
    parse_hcl_report(raw)
    with pytest.raises(ValueError, match=message):
        parse_hcl_report(mutate(raw))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_hcl_report_parser_and_check_only_raise_value_error(data: st.DataObject) -> None:
    """Whatever the NV index holds (the provider turns ValueError into Unavailable)."""
    raw = bytearray(Paravisor().report(b"\x05" * 64))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        kind = data.draw(st.sampled_from(["byte", "u32", "cut"]))
        if kind == "byte":
            raw[pos] = data.draw(st.integers(0, 255))
        elif kind == "u32":
            raw[pos:pos + 4] = data.draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
        else:
            del raw[pos:]
            break
    try:
        check_hcl_report(parse_hcl_report(bytes(raw)), b"\x05" * 64)
    except ValueError:
        pass


def test_check_hcl_report_needs_our_user_data_hash_binding_and_snp() -> None:
    user = b"\x05" * 64
    check_hcl_report(parse_hcl_report(Paravisor().report(user)), user)
    with pytest.raises(ValueError, match="does not carry our user data"):
        check_hcl_report(parse_hcl_report(Paravisor().report(user)), b"\x06" * 64)
    with pytest.raises(ValueError, match="not the hash of the HCL runtime data"):
        check_hcl_report(parse_hcl_report(Paravisor(hash_ok=False).report(user)), user)
    tdx = parse_hcl_report(Paravisor().report(user))
    with pytest.raises(ValueError, match="tdx hardware report"):
        check_hcl_report(HclReport(tdx.version, tdx.request_type, 4, 1, tdx.hw_report, tdx.runtime_data), user)


def test_maa_request_shape() -> None:
    body = maa_request(b"\x01\x02", b"PEM", b'{"a":1}', b"nn")
    assert set(body) == {"report", "runtimeData", "nonce"} and body["nonce"] == "bm4="
    assert body["runtimeData"] == {"data": "eyJhIjoxfQ", "dataType": "JSON"}  # unpadded base64url
    inner = json.loads(base64.urlsafe_b64decode(body["report"] + "=" * (-len(body["report"]) % 4)))
    assert inner == {"SnpReport": "AQI", "VcekCertChain": "UEVN"}
    assert "nonce" not in maa_request(b"\x01", b"PEM", b"{}", None)


# --------------------------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("nested", [False, True], ids=["sevsnpvm-flat", "isolation-tee-nested"])
def test_collect_azure_verifies_with_binding_and_nonce(imds: FakeImds, nested: bool) -> None:
    with FakeMaa(nested=nested) as maa:
        paravisor = Paravisor()
        response, binding = collected(provider_for(maa.url, imds.url, paravisor))
        token = evidence_of(response)
        assert response["format"] == FORMATS["azure"] == "azure-maa-jwt" and maa.refusals == []
        result = verify(token, platform="azure", roots=maa.roots(), now=datetime.now(UTC),
                        nonce=b"client nonce", report_data=binding)
        assert result.ok, result
        assert result.facts["tee_type"] == "sevsnpvm" and result.facts["user_data"].lower() == binding.hex()
        assert result.facts["measurements"] == {"launch_measurement": MEASUREMENT.hex()}
        assert result.facts["is_debuggable"] is False and paravisor.writes == 1
        assert imds.requests[0]["headers"]["Metadata"] == "true"
        sent = json.loads(maa.requests[0]["body"])
        assert maa.requests[0]["query"] == {"api-version": ["2022-08-01"]}
        assert base64.b64decode(sent["nonce"]) == b"client nonce"


def test_collect_without_nonce_verifies_by_binding(imds: FakeImds, maa: FakeMaa) -> None:
    response, binding = collected(provider_for(maa.url, imds.url), nonce=None)
    result = verify(evidence_of(response), platform="azure", roots=maa.roots(), now=datetime.now(UTC),
                    report_data=binding)
    assert result.ok, result
    assert "nonce" not in json.loads(maa.requests[0]["body"])


def test_wrong_key_or_issuer_fails_chain_or_signature(imds: FakeImds, maa: FakeMaa) -> None:
    response, binding = collected(provider_for(maa.url, imds.url))
    token, now = evidence_of(response), datetime.now(UTC)
    with FakeMaa(issuer=maa.issuer) as impostor:  # same issuer, another key under the same kid
        impostor.kid = maa.kid
        wrong_key = verify(token, platform="azure", roots=impostor.roots(), now=now, report_data=binding)
    assert (wrong_key.ok, wrong_key.failed_step) == (False, "signature")
    other_issuer = verify(token, platform="azure", roots=Roots(jwks={"https://other.attest.azure.net": maa.jwks()}),
                          now=now, report_data=binding)
    assert (other_issuer.ok, other_issuer.failed_step) == (False, "chain")


def test_token_for_other_user_data_or_nonce_fails_nonce(imds: FakeImds, maa: FakeMaa) -> None:
    provider = provider_for(maa.url, imds.url)
    response, binding = collected(provider)
    token, now = evidence_of(response), datetime.now(UTC)
    other_binding = binding_digest(nonce=b"client nonce", tls_spki_sha256=SPKI, hpke_public_key=HPKE,
                                   timestamp_ms=response["metadata"]["timestamp_ms"] + 1)
    assert verify(token, platform="azure", roots=maa.roots(), now=now,
                  report_data=other_binding).failed_step == "nonce"
    assert verify(token, platform="azure", roots=maa.roots(), now=now, nonce=b"another",
                  report_data=binding).failed_step == "nonce"
    # a token MAA signed for someone else's user data does not verify with our binding
    stranger = maa.sign(dict(claims_of(token), **{"x-ms-runtime": {"user-data": "00" * 64}}))
    assert verify(stranger.encode(), platform="azure", roots=maa.roots(), now=now,
                  report_data=binding).failed_step == "nonce"


def test_debuggable_vm_fails_policy(imds: FakeImds, maa: FakeMaa) -> None:
    response, binding = collected(provider_for(maa.url, imds.url, Paravisor(debug=True)))
    token = evidence_of(response)
    assert claims_of(token)["x-ms-sevsnpvm-is-debuggable"] is True
    result = verify(token, platform="azure", roots=maa.roots(), now=datetime.now(UTC), report_data=binding)
    assert (result.ok, result.failed_step) == (False, "policy")
    allowed = verify(token, platform="azure", roots=maa.roots(), now=datetime.now(UTC), report_data=binding,
                     allow_debug=True)
    assert allowed.ok, allowed


def test_user_data_index_is_defined_once_and_vcek_chain_fetched_once(imds: FakeImds, maa: FakeMaa) -> None:
    fake = FakeTpm()
    provider = provider_for(maa.url, imds.url, fake=fake)
    evidence_of(collected(provider)[0])
    assert fake.commands.count(TPM_CC_NV_DefineSpace) == 1
    user_index = fake.nv[HCL_USER_DATA_NV_INDEX]
    assert len(user_index.data) == 64 and user_index.attributes & TPMA_NV_OWNERWRITE
    evidence_of(collected(provider)[0])
    assert fake.commands.count(TPM_CC_NV_DefineSpace) == 1 and fake.commands.count(TPM_CC_NV_Write) == 2
    assert len(imds.requests) == 1 and len(maa.requests) == 2 and maa.refusals == []
    chain = base64.urlsafe_b64decode(json.loads(base64.urlsafe_b64decode(
        json.loads(maa.requests[1]["body"])["report"] + "==="))["VcekCertChain"] + "===")
    assert chain.decode() == FAKE_VCEK + FAKE_CHAIN


# --------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("status400", "answered HTTP 400: {\"error\": {\"code\": \"InvalidParameter\""),
        ("status500", "answered HTTP 500: internal"),
        ("garbage", "answered without a token"),
        ("no-token", "answered without a token"),
        ("bad-token", "answered a token that is not a compact JWS"),
        ("oversized", "bytes, limit"),
    ],
)
def test_maa_failures_are_reported_in_error(imds: FakeImds, maa: FakeMaa, mode: str, expected: str) -> None:
    maa.mode = mode
    response, _ = collected(provider_for(maa.url, imds.url))
    assert response["attestation"] is None
    assert "Microsoft Azure Attestation" in response["error"] and expected in response["error"]
    assert f"{maa.url}/attest/SevSnpVm?api-version=2022-08-01" in response["error"]


def test_maa_down_or_slow_is_reported_in_error(imds: FakeImds) -> None:
    url = dead_url().rstrip("/")
    response, _ = collected(provider_for(url, imds.url))
    assert response["attestation"] is None and f"{url}/attest/SevSnpVm" in response["error"]
    assert "unreachable" in response["error"]

    with FakeMaa() as slow:
        slow.delay = 1.0
        response, _ = collected(provider_for(slow.url, imds.url, maa_timeout=0.2))
    assert "did not answer in time (0.2 s)" in response["error"]


@pytest.mark.parametrize("mode", ["down", "status400", "garbage", "oversized"])
def test_imds_failures_are_reported_in_error(maa: FakeMaa, mode: str) -> None:
    with FakeImds() as imds:
        imds.mode = "ok" if mode == "down" else mode
        url = dead_url().rstrip("/") if mode == "down" else imds.url
        response, _ = collected(provider_for(maa.url, url))
    assert response["attestation"] is None and "Azure IMDS" in response["error"]
    assert f"{url}/metadata/THIM/amd/certification" in response["error"] and maa.requests == []


def test_report_is_reread_while_the_paravisor_catches_up(imds: FakeImds, maa: FakeMaa) -> None:
    response, binding = collected(provider_for(maa.url, imds.url, Paravisor(lag=2)))
    result = verify(evidence_of(response), platform="azure", roots=maa.roots(), now=datetime.now(UTC),
                    report_data=binding)
    assert result.ok, result
    response, _ = collected(provider_for(maa.url, imds.url, Paravisor(lag=3)))  # three reads, all stale
    assert "does not carry our user data" in response["error"]


def test_hcl_report_without_our_user_data_is_refused(imds: FakeImds, maa: FakeMaa) -> None:
    paravisor = Paravisor(stale=True)  # the boot-time report (user data zero) stays in place
    response, _ = collected(provider_for(maa.url, imds.url, paravisor))
    assert response["attestation"] is None and paravisor.writes == 1
    assert "does not carry our user data" in response["error"] and "0x01400001" in response["error"]
    assert maa.requests == [] and imds.requests == []

    response, _ = collected(provider_for(maa.url, imds.url, Paravisor(hash_ok=False)))
    assert "not the hash of the HCL runtime data" in response["error"]


def test_vtpm_failure_is_reported_in_error(imds: FakeImds, maa: FakeMaa, tmp_path: Any) -> None:
    refusing = FakeTpm(inject={TPM_CC_NV_Write: [RC_NV_AUTHORIZATION]})
    response, _ = collected(provider_for(maa.url, imds.url, fake=refusing))
    assert response["attestation"] is None and "azure: vTPM access failed: TPM2_NV_Write" in response["error"]

    missing = AzureProvider.from_device(str(tmp_path / "tpmrm0"), maa_url=maa.url, imds_url=imds.url)
    response, _ = collected(missing)
    assert "vTPM access failed" in response["error"] and "tpmrm0" in response["error"]
    assert maa.requests == [] and imds.requests == []


def test_maa_url_unset_is_a_clear_configuration_error(tmp_path: Any) -> None:
    response = collect("azure", b"n", SPKI, HPKE, datetime.now(UTC))  # default_provider, default Services
    assert response["attestation"] is None and "TEEPROVER_MAA_URL" in response["error"]
    provider = default_provider("azure", root=str(tmp_path), services=Services(maa_url="https://maa.example",
                                                                                imds_url="http://imds.example"))
    assert isinstance(provider, AzureProvider)
    assert (provider.maa_url, provider.imds_url) == ("https://maa.example", "http://imds.example")
