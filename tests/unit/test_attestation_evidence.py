"""Server side: binding layout, collect() for simulated / fake NSM / fake configfs-tsm, detection.

The configfs-tsm tests lay out a temp dir following the Linux kernel ABI
Documentation/ABI/testing/configfs-tsm (report/<entry>/{inblob,outblob,auxblob,provider,
generation}); a real configfs creates the attribute files on mkdir and produces outblob
from inblob, so the fake pre-creates the entry with the report the "hardware" would return.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from teeprover.attestation import Roots, binding_bytes, binding_digest, collect, detect_platform, verify
from teeprover.attestation.evidence.nitro import NitroProvider, encode_nsm_request
from teeprover.attestation.evidence.tsm import ConfigfsTsmProvider
from teeprover.attestation.simulated import build_document, self_signed_p384
from teeprover.attestation.snp import CERT_TABLE_GUIDS
from teeprover.errors import InvalidInput

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SPKI = hashlib.sha256(b"tls key").digest()
HPKE = b"\x07" * 1216  # ML-KEM-768 + X25519 public key size


def test_binding_bytes_layout_is_pinned() -> None:
    encoded = binding_bytes(nonce=b"\xaa", tls_spki_sha256=b"\x01" * 32, hpke_public_key=b"\x02", timestamp_ms=1)
    expected = (
        b"\xa4"
        + b"\x65nonce"
        + b"\x41\xaa"
        + b"\x69timestamp"
        + b"\x01"
        + b"\x6fhpke_public_key"
        + b"\x41\x02"
        + b"\x6ftls_spki_sha256"
        + b"\x58\x20"
        + b"\x01" * 32
    )
    assert encoded == expected
    assert (
        binding_digest(nonce=b"\xaa", tls_spki_sha256=b"\x01" * 32, hpke_public_key=b"\x02", timestamp_ms=1)
        == hashlib.sha512(expected).digest()
    )
    assert binding_bytes(nonce=None, tls_spki_sha256=None, hpke_public_key=None, timestamp_ms=0) == (
        b"\xa4\x65nonce\xf6\x69timestamp\x00\x6fhpke_public_key\xf6\x6ftls_spki_sha256\xf6"
    )


@pytest.mark.parametrize(("field", "value", "message"), [
    ("nonce", b"n" * 65, "nonce must be at most 64 bytes"),
    ("tls_spki_sha256", b"s" * 31, "tls_spki_sha256 must be 32 bytes"),
    ("hpke_public_key", b"", "hpke_public_key must be 1..4096 bytes"),
    ("hpke_public_key", b"k" * 4097, "hpke_public_key must be 1..4096 bytes"),
    ("timestamp_ms", -1, "timestamp must be a non-negative integer of milliseconds"),
    ("timestamp_ms", 2**63, "timestamp must be a non-negative integer of milliseconds"),
    ("timestamp_ms", True, "timestamp must be a non-negative integer of milliseconds"),
    ("timestamp_ms", 1.5, "timestamp must be a non-negative integer of milliseconds"),
])
def test_binding_refuses_values_it_cannot_bind(field: str, value: object, message: str) -> None:
    args: dict = {"nonce": b"n" * 64, "tls_spki_sha256": b"s" * 32, "hpke_public_key": b"k" * 4096,
                  "timestamp_ms": 2**63 - 1}
    assert len(binding_digest(**args)) == 64  # the bounds themselves are accepted
    args[field] = value
    with pytest.raises(InvalidInput, match=message):
        binding_digest(**args)


def test_collect_simulated_round_trips_and_is_refused_by_default() -> None:
    now = datetime.now(UTC)  # the process-wide simulated key is minted at real time
    response = collect("simulated", b"n" * 64, SPKI, HPKE, now)
    assert set(response) == {"platform", "format", "nonce", "attestation", "metadata", "error"}
    assert (
        response["error"] is None and response["nonce"] == (b"n" * 64).hex() and response["metadata"]["debug"] is True
    )
    evidence = base64.b64decode(response["attestation"])
    refused = verify(evidence, platform="simulated", now=now, nonce=b"n" * 64)
    assert (refused.ok, refused.failed_step) == (False, "policy") and "NOT SECURE" in refused.message
    rd = binding_digest(
        nonce=b"n" * 64, tls_spki_sha256=SPKI, hpke_public_key=HPKE, timestamp_ms=response["metadata"]["timestamp_ms"]
    )
    ok = verify(evidence, platform="simulated", now=now, nonce=b"n" * 64, report_data=rd, allow_simulated=True)
    assert ok.ok, ok
    assert "NOT SECURE" in ok.facts["platform_text"] and ok.facts["debug"] is True
    assert verify(evidence, platform="aws-nitro", now=now).failed_step in ("structure", "chain")  # never real hardware
    bad = bytearray(evidence)
    bad[-5] ^= 1
    assert verify(bytes(bad), platform="simulated", now=now, allow_simulated=True).failed_step == "signature"


def test_collect_rejects_nonce_over_64_bytes() -> None:
    with pytest.raises(InvalidInput):
        collect("simulated", b"x" * 65, None, None, NOW)


def test_collect_reports_unavailable_tee_in_error_field(tmp_path: Path) -> None:
    provider = ConfigfsTsmProvider("sev-snp", str(tmp_path / "missing"))
    response = collect("sev-snp", b"n", None, None, NOW, provider=provider)
    assert response["attestation"] is None and "configfs-tsm" in response["error"]


# --------------------------------------------------------------------------------------------- fake NSM


class FakeNsm:
    """Answers the NSM ioctl protocol like the device: CBOR request in, CBOR response out."""

    def __init__(self) -> None:
        self.root_key, self.root = self_signed_p384("fake nitro root", NOW - timedelta(days=1), timedelta(days=10))
        self.leaf_key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake enclave")])
        self.leaf = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(self.root.subject)
            .public_key(self.leaf_key.public_key())
            .serial_number(7)
            .not_valid_before(NOW - timedelta(hours=1))
            .not_valid_after(NOW + timedelta(hours=3))
            .sign(self.root_key, hashes.SHA384())
        )
        self.requests: list[bytes] = []

    def __call__(self, request: bytes) -> bytes:
        self.requests.append(request)
        body = cbor2.loads(request)["Attestation"]
        doc = build_document(
            private_key=self.leaf_key,
            certificate=self.leaf.public_bytes(Encoding.DER),
            cabundle=[self.root.public_bytes(Encoding.DER)],
            module_id="i-fake-enc0",
            now=NOW,
            pcrs={i: bytes([i + 1]) * 48 for i in range(16)},
            user_data=body["user_data"],
            nonce=body["nonce"],
            public_key=body["public_key"],
        )
        return cbor2.dumps({"Attestation": {"document": doc}})


def test_nsm_request_encoding() -> None:
    assert cbor2.loads(encode_nsm_request(user_data=b"u", nonce=None, public_key=b"k")) == {
        "Attestation": {"user_data": b"u", "nonce": None, "public_key": b"k"}
    }


def test_collect_nitro_with_fake_nsm_verifies_against_its_root() -> None:
    nsm = FakeNsm()
    response = collect("aws-nitro", b"abc", SPKI, b"k" * 32, NOW, provider=NitroProvider(nsm))
    evidence = base64.b64decode(response["attestation"])
    rd = binding_digest(
        nonce=b"abc", tls_spki_sha256=SPKI, hpke_public_key=b"k" * 32, timestamp_ms=response["metadata"]["timestamp_ms"]
    )
    roots = Roots(anchors=(nsm.root,))
    result = verify(evidence, platform="aws-nitro", roots=roots, now=NOW, nonce=b"abc", report_data=rd)
    assert result.ok, result
    assert result.facts["public_key"] == b"k" * 32
    assert verify(evidence, platform="aws-nitro", now=NOW).failed_step == "chain"  # not the pinned AWS root


def test_nsm_error_response_becomes_error_field() -> None:
    response = collect(
        "aws-nitro", None, None, None, NOW, provider=NitroProvider(lambda _req: cbor2.dumps({"Error": "InternalError"}))
    )
    assert response["attestation"] is None and "InternalError" in response["error"]


# --------------------------------------------------------------------------------------------- fake SEV-SNP


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def _ext(oid: str, der: bytes) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), der)


class FakeAmd:
    """A miniature AMD PKI (ARK -> ASK -> VCEK, RSA-PSS) and a chip that signs reports."""

    chip_id = bytes(range(64))
    tcb = {"bl": 3, "tee": 0, "snp": 8, "ucode": 115}

    def __init__(self) -> None:
        def name(cn: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def cert(subject, issuer, pub, signer, ca, exts=()):
            b = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(issuer)
                .public_key(pub)
                .serial_number(x509.random_serial_number())
                .not_valid_before(NOW - timedelta(days=1))
                .not_valid_after(NOW + timedelta(days=1))
            )
            if ca:
                b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            for e in exts:
                b = b.add_extension(e, critical=False)
            return b.sign(signer, hashes.SHA384(), rsa_padding=_pss())

        ark_key = rsa.generate_private_key(65537, 2048)
        ask_key = rsa.generate_private_key(65537, 2048)
        self.vcek_key = ec.generate_private_key(ec.SECP384R1())
        self.ark = cert(name("ARK-Fake"), name("ARK-Fake"), ark_key.public_key(), ark_key, True)
        self.ask = cert(name("SEV-Fake"), name("ARK-Fake"), ask_key.public_key(), ark_key, True)
        exts = [_ext("1.3.6.1.4.1.3704.1.2", b"\x16\x04Fake"), _ext("1.3.6.1.4.1.3704.1.4", self.chip_id)]
        for field, oid in (("bl", "1"), ("tee", "2"), ("snp", "3"), ("ucode", "8")):
            exts.append(_ext(f"1.3.6.1.4.1.3704.1.3.{oid}", bytes([0x02, 0x01, self.tcb[field]])))
        self.vcek = cert(name("SEV-VCEK"), name("SEV-Fake"), self.vcek_key.public_key(), ask_key, False, exts)

    def report(self, report_data: bytes, *, policy: int = 0x30000, measurement: bytes = b"\x5a" * 48) -> bytes:
        r = bytearray(1184)
        struct.pack_into("<IIQ", r, 0, 2, 0, policy)
        struct.pack_into("<I", r, 0x34, 1)
        r[0x50:0x90] = report_data
        r[0x90:0xC0] = measurement
        tcb = bytes([self.tcb["bl"], self.tcb["tee"], 0, 0, 0, 0, self.tcb["snp"], self.tcb["ucode"]])
        r[0x180:0x188] = tcb
        r[0x1A0:0x1E0] = self.chip_id
        rr, ss = decode_dss_signature(self.vcek_key.sign(bytes(r[:0x2A0]), ec.ECDSA(hashes.SHA384())))
        r[0x2A0:0x2E8] = rr.to_bytes(72, "little")
        r[0x2E8:0x330] = ss.to_bytes(72, "little")
        return bytes(r)

    def cert_table(self) -> bytes:
        return _cert_table([("vcek", self.vcek.public_bytes(Encoding.DER)),
                            ("ask", self.ask.public_bytes(Encoding.DER))])

    def roots(self) -> Roots:
        return Roots(anchors=(self.ark,))


@pytest.fixture(scope="module")
def amd() -> FakeAmd:
    return FakeAmd()


def make_tsm_entry(root: Path, amd: FakeAmd, report: bytes, provider: str = "sev_guest") -> Path:
    entry = root / "teeprover-test"
    entry.mkdir(parents=True)
    (entry / "provider").write_text(provider + "\n")
    (entry / "generation").write_text("1\n")
    (entry / "outblob").write_bytes(report)
    (entry / "auxblob").write_bytes(amd.cert_table())
    return entry


def test_collect_snp_from_fake_configfs_tsm_verifies(tmp_path: Path, amd: FakeAmd) -> None:
    rd = binding_digest(
        nonce=b"nn", tls_spki_sha256=SPKI, hpke_public_key=HPKE, timestamp_ms=int(NOW.timestamp() * 1000)
    )
    tsm = tmp_path / "sys/kernel/config/tsm/report"
    entry = make_tsm_entry(tsm, amd, amd.report(rd))
    provider = ConfigfsTsmProvider("sev-snp", str(tsm), entry="teeprover-test")
    response = collect("sev-snp", b"nn", SPKI, HPKE, NOW, provider=provider)
    assert response["error"] is None, response["error"]
    assert (entry / "inblob").read_bytes() == rd  # what the kernel would have been asked to sign
    evidence = base64.b64decode(response["attestation"])
    result = verify(evidence, platform="sev-snp", roots=amd.roots(), now=NOW, report_data=rd)
    assert result.ok, result
    assert result.facts["product"] == "Fake" and result.facts["measurement"] == "5a" * 48
    assert detect_platform(tmp_path) == "sev-snp"


def test_snp_debug_policy_bit_is_refused(amd: FakeAmd) -> None:
    from teeprover.attestation import snp_evidence

    vcek = amd.vcek.public_bytes(Encoding.DER)
    debug = snp_evidence(amd.report(bytes(64), policy=0x30000 | 1 << 19), vcek)
    result = verify(debug, platform="sev-snp", roots=Roots(anchors=(amd.ark,), intermediates=(amd.ask,)), now=NOW)
    assert (result.ok, result.failed_step, result.facts["debug"]) == (False, "policy", True)
    assert verify(
        debug, platform="sev-snp", roots=Roots(anchors=(amd.ark,), intermediates=(amd.ask,)), now=NOW, allow_debug=True
    ).ok


def test_snp_tcb_or_chip_mismatch_fails_tcb(amd: FakeAmd) -> None:
    from teeprover.attestation import snp_evidence

    other = FakeAmd()
    other.vcek_key, other.vcek = amd.vcek_key, amd.vcek  # same key and certificate ...
    other.chip_id = bytes(64)  # ... but the report claims another chip
    roots = Roots(anchors=(amd.ark,), intermediates=(amd.ask,))
    evidence = snp_evidence(other.report(bytes(64)), amd.vcek.public_bytes(Encoding.DER))
    assert verify(evidence, platform="sev-snp", roots=roots, now=NOW).failed_step == "tcb"


def test_configfs_provider_refuses_report_without_our_report_data(tmp_path: Path, amd: FakeAmd) -> None:
    tsm = tmp_path / "tsm"
    make_tsm_entry(tsm, amd, amd.report(bytes(64)))
    response = collect(
        "sev-snp", b"nn", None, None, NOW, provider=ConfigfsTsmProvider("sev-snp", str(tsm), entry="teeprover-test")
    )
    assert response["attestation"] is None and "report_data" in response["error"]


def _cert_table(entries: list[tuple[str, bytes]]) -> bytes:
    offset = 24 * (len(entries) + 1)
    head, body = b"", b""
    for name, der in entries:
        head += CERT_TABLE_GUIDS[name].bytes + struct.pack("<II", offset + len(body), len(der))
        body += der
    return head + bytes(24) + body


@pytest.mark.parametrize(("platform", "provider", "auxblob", "message"), [
    ("sev-snp", "tdx_guest", None, "configfs-tsm provider is 'tdx_guest', expected sev_guest"),
    ("tdx", "sev_guest", None, "configfs-tsm provider is 'sev_guest', expected tdx_guest"),
    ("sev-snp", "sev_guest", b"\x01" * 30, "SEV-SNP certificate table is malformed: "),
    ("sev-snp", "sev_guest", "ask only", "SEV-SNP auxblob holds no VCEK/VLEK (host did not provision certificates)"),
    ("tdx", "tdx_guest", None, "tdx: no PCS/PCCS configured to fetch the quote's DCAP collateral"),
])
def test_configfs_tsm_failures_are_reported_in_the_error_field(tmp_path: Path, amd: FakeAmd, platform: str,
                                                               provider: str, auxblob: bytes | str | None,
                                                               message: str) -> None:
    rd = binding_digest(nonce=b"nn", tls_spki_sha256=None, hpke_public_key=None,
                        timestamp_ms=int(NOW.timestamp() * 1000))
    entry = make_tsm_entry(tmp_path, amd, amd.report(rd), provider=provider)
    if auxblob == "ask only":
        (entry / "auxblob").write_bytes(_cert_table([("ask", amd.ask.public_bytes(Encoding.DER))]))
    elif isinstance(auxblob, bytes):
        (entry / "auxblob").write_bytes(auxblob)
    response = collect(platform, b"nn", None, None, NOW,
                       provider=ConfigfsTsmProvider(platform, str(tmp_path), entry="teeprover-test"))
    assert response["attestation"] is None and response["error"].startswith(message)
    # Nothing is asked of a provider of another kind; the right one was asked for our report data.
    assert (entry / "inblob").exists() is ("provider is" not in message)


def test_configfs_tsm_without_the_interface_is_unavailable(tmp_path: Path) -> None:
    provider = ConfigfsTsmProvider("sev-snp", str(tmp_path / "no/such/tsm"))
    response = collect("sev-snp", None, None, None, NOW, provider=provider)
    assert response["attestation"] is None and response["error"].startswith("configfs-tsm report failed: ")


# --------------------------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"dev/nsm": "", "dev/sev-guest": ""}, "aws-nitro"),
        ({"sys/kernel/config/tsm/report/x/provider": "tdx_guest"}, "tdx"),
        ({"dev/sev-guest": ""}, "sev-snp"),
        ({"dev/tpmrm0": "", "sys/class/dmi/id/product_name": "Google Compute Engine"}, "gcp-vtpm"),
        ({"dev/tpmrm0": "", "sys/class/dmi/id/sys_vendor": "Microsoft Corporation"}, "azure"),
        ({}, "simulated"),
    ],
)
def test_detect_platform_in_priority_order(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    assert detect_platform(tmp_path) == expected


def test_detect_platform_probes_an_empty_tsm_interface_and_cleans_up(tmp_path: Path) -> None:
    # A configfs-tsm without a provider (no TSM driver bound): the probe entry is removed again and detection
    # goes on to the device files.
    tsm = tmp_path / "sys/kernel/config/tsm/report"
    (tsm / "stale-entry").mkdir(parents=True)  # an entry without a provider file is skipped
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/tdx_guest").write_bytes(b"")
    assert detect_platform(tmp_path) == "tdx"
    assert [p.name for p in tsm.iterdir()] == ["stale-entry"]
    (tmp_path / "dev/tdx_guest").unlink()
    assert detect_platform(tmp_path) == "simulated"


# --------------------------------------------------------------------------------------------- fake /dev/sev-guest


class FakeSevGuest:
    """Answers SNP_GET_EXT_REPORT exactly as the Linux sev-guest driver does (include/uapi/linux/sev-guest.h):
    reads user_data from the request at ``req_data``, writes MSG_REPORT_RSP (status, report_size, report at
    0x20) at ``resp_data`` and the certificate table at ``certs_address``; a too-small certificate buffer gets
    EIO with SNP_GUEST_VMM_ERR_INVALID_LEN in exitinfo2's upper half and the needed length in certs_len."""

    def __init__(self, amd: FakeAmd) -> None:
        self.amd = amd
        self.calls: list[int] = []

    def __call__(self, request: int, arg: object) -> None:
        import ctypes
        import errno

        from teeprover.attestation.evidence.sev_guest import (
            SNP_GET_EXT_REPORT,
            SnpExtReportReq,
            SnpGuestRequestIoctl,
        )

        assert request == SNP_GET_EXT_REPORT and isinstance(arg, SnpGuestRequestIoctl) and arg.msg_version == 1
        req = SnpExtReportReq.from_address(arg.req_data)
        self.calls.append(int(req.certs_len))
        table = self.amd.cert_table()
        needed = -(-(len(table) + 40000) // 4096) * 4096  # a host with a large table: forces one retry
        if req.certs_len < needed:
            req.certs_len = needed
            arg.exitinfo2 = 1 << 32
            raise OSError(errno.EIO, "Input/output error")
        ctypes.memmove(req.certs_address, table, len(table))
        report = self.amd.report(bytes(req.data.user_data))
        resp = struct.pack("<II", 0, len(report)) + bytes(24) + report
        ctypes.memmove(arg.resp_data, resp, len(resp))


def test_collect_snp_from_fake_sev_guest_device_verifies(amd: FakeAmd) -> None:
    from teeprover.attestation.evidence.sev_guest import SevGuestProvider

    rd = binding_digest(nonce=b"nn", tls_spki_sha256=SPKI, hpke_public_key=HPKE,
                        timestamp_ms=int(NOW.timestamp() * 1000))
    device = FakeSevGuest(amd)
    response = collect("sev-snp", b"nn", SPKI, HPKE, NOW, provider=SevGuestProvider(device))
    assert response["error"] is None, response["error"]
    assert len(device.calls) == 2 and device.calls[1] > device.calls[0]  # retried with the length asked for
    result = verify(base64.b64decode(response["attestation"]), platform="sev-snp", roots=amd.roots(), now=NOW,
                    report_data=rd)
    assert result.ok, result


def test_sev_guest_report_without_our_report_data_is_refused(amd: FakeAmd) -> None:
    from teeprover.attestation.evidence.sev_guest import SevGuestProvider

    class Replaying(FakeSevGuest):
        def __call__(self, request: int, arg: object) -> None:
            import ctypes

            from teeprover.attestation.evidence.sev_guest import SnpExtReportReq

            req = SnpExtReportReq.from_address(arg.req_data)  # type: ignore[attr-defined]
            ctypes.memset(req.data.user_data, 0, 64)  # a host replaying an old report
            super().__call__(request, arg)

    response = collect("sev-snp", b"nn", SPKI, HPKE, NOW, provider=SevGuestProvider(Replaying(amd)))
    assert response["attestation"] is None and "report_data" in response["error"]


def test_default_provider_falls_back_to_dev_sev_guest(tmp_path: Path) -> None:
    from teeprover.attestation.evidence import default_provider
    from teeprover.attestation.evidence.sev_guest import SevGuestProvider

    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/sev-guest").write_bytes(b"")
    assert isinstance(default_provider("sev-snp", str(tmp_path)), SevGuestProvider)
