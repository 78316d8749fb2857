"""The TPM 2.0 client (teeprover/attestation/tpm.py) and GCP vTPM evidence collection.

The TPM is tests/support/fake_tpm.py, a simulator that speaks the TCG TPM 2.0 command /
response wire format (Library Part 1 §18, Part 3 command sections) and answers malformed
commands with real TPM_RC codes.  The GCE side follows go-tpm-tools: AK template in NV
0x01c10001, AK certificate in NV 0x01c10000 (here issued by a test CA root -> intermediate).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from teeprover.attestation import Roots, binding_digest, collect, gcp, verify
from teeprover.attestation import tpm as T
from teeprover.attestation.evidence import default_provider
from teeprover.attestation.evidence.gcp import (
    GCE_AK_CERT_NV_INDEX_RSA,
    GCE_AK_TEMPLATE_NV_INDEX_RSA,
    GcpVtpmProvider,
    encode_gcp_attestation,
)
from teeprover.commands.attestation import main as cli_main
from teeprover.errors import Unavailable
from tests.support.fake_tpm import FakeTpm, ak_template_rsa

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SPKI = hashlib.sha256(b"tls key").digest()
HPKE = b"\x07" * 1216
TEMPLATE = ak_template_rsa()
USER_DATA_INDEX = 0x01400002  # Azure's HCL user-data index
PROPS = settings(max_examples=150, deadline=None)


# --------------------------------------------------------------------------------------------- fixtures


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer: str, public_key, signer, *, ca: bool) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signer, hashes.SHA256())


@dataclass
class FakeCa:
    root: x509.Certificate
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey

    def issue_ak(self, ak: rsa.RSAPublicKey) -> bytes:
        return _cert("fake GCE AK", "fake EK/AK intermediate", ak, self.intermediate_key, ca=False).public_bytes(
            Encoding.DER
        )

    def roots(self) -> Roots:
        return Roots(anchors=(self.root,), intermediates=(self.intermediate,))


@pytest.fixture(scope="module")
def ca() -> FakeCa:
    root_key = ec.generate_private_key(ec.SECP256R1())
    mid_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert("fake EK/AK root", "fake EK/AK root", root_key.public_key(), root_key, ca=True)
    mid = _cert("fake EK/AK intermediate", "fake EK/AK root", mid_key.public_key(), root_key, ca=True)
    return FakeCa(root, mid, mid_key)


@pytest.fixture(scope="module")
def key_cache() -> dict:
    return {}  # one AK per module: RSA-2048 generation is the slow part


def gce_tpm(ca: FakeCa, keys: dict | None = None, **kwargs) -> FakeTpm:
    """A fake GCE vTPM: AK template and AK certificate provisioned, PCRs with distinct values."""
    fake = FakeTpm(_keys={} if keys is None else keys, **kwargs)
    fake.nv_preload(GCE_AK_TEMPLATE_NV_INDEX_RSA, TEMPLATE)
    ak = fake.primary_key(T.TPM_RH_ENDORSEMENT, TEMPLATE)
    fake.nv_preload(GCE_AK_CERT_NV_INDEX_RSA, ca.issue_ak(ak.public_key()))
    for alg, size in ((T.TPM_ALG_SHA1, 20), (T.TPM_ALG_SHA256, 32), (T.TPM_ALG_SHA384, 48)):
        for i in range(24):
            fake.pcrs[alg][i] = bytes([i + 1]) * size
    return fake


@pytest.fixture()
def fake(ca: FakeCa, key_cache: dict) -> FakeTpm:
    return gce_tpm(ca, key_cache)


def rd_for(response: dict, nonce: bytes | None = b"nonce") -> bytes:
    return binding_digest(
        nonce=nonce, tls_spki_sha256=SPKI, hpke_public_key=HPKE, timestamp_ms=response["metadata"]["timestamp_ms"]
    )


def collect_gcp(fake: FakeTpm, nonce: bytes | None = b"nonce") -> tuple[dict, bytes]:
    response = collect("gcp-vtpm", nonce, SPKI, HPKE, NOW, provider=GcpVtpmProvider(fake))
    assert response["error"] is None, response["error"]
    return response, base64.b64decode(response["attestation"])


# --------------------------------------------------------------------------------------------- response codes


@pytest.mark.parametrize(
    ("rc", "text"),
    [
        (0x18B, "TPM_RC_HANDLE (handle 1)"),
        (0x28B, "TPM_RC_HANDLE (handle 2)"),
        (0x1D5, "TPM_RC_SIZE (parameter 1)"),
        (0x98E, "TPM_RC_AUTH_FAIL (session 1)"),
        (0x095, "TPM_RC_SIZE"),
        (0x143, "TPM_RC_COMMAND_CODE"),
        (0x14A, "TPM_RC_NV_UNINITIALIZED"),
        (0x922, "TPM_RC_RETRY"),
        (0x902, "TPM_RC_OBJECT_MEMORY"),
        (0x01E, "TPM_RC_BAD_TAG"),
        (0x0B0101, "layer 11 code 0x101"),
    ],
)
def test_describe_rc_decodes_format_one_and_zero(rc: int, text: str) -> None:
    assert T.describe_rc(rc) == text


# --------------------------------------------------------------------------------------------- the simulator itself


def _raw(tag: int, code: int, body: bytes, size: int | None = None) -> bytes:
    return struct.pack(">HII", tag, 10 + len(body) if size is None else size, code) + body


def _rc(response: bytes) -> int:
    tag, size, rc = struct.unpack(">HII", response[:10])
    assert tag == T.TPM_ST_NO_SESSIONS and size == len(response) == 10  # error responses carry no body
    return int(rc)


def test_fake_rejects_malformed_commands_with_tpm_response_codes() -> None:
    fake = FakeTpm()
    fake.nv_preload(0x01500000, b"abc")
    nv_read = T.u32(T.TPM_RH_OWNER) + T.u32(0x01500000)
    pw = T.password_auth()
    assert _rc(fake(b"\x80")) == 0x142  # TPM_RC_COMMAND_SIZE
    assert _rc(fake(_raw(0x1234, T.TPM_CC_PCR_Read, b""))) == 0x01E  # TPM_RC_BAD_TAG
    assert _rc(fake(_raw(T.TPM_ST_NO_SESSIONS, T.TPM_CC_PCR_Read, b"", size=99))) == 0x142
    assert _rc(fake(_raw(T.TPM_ST_NO_SESSIONS, 0x0199, b""))) == 0x143  # TPM_RC_COMMAND_CODE
    assert _rc(fake(_raw(T.TPM_ST_NO_SESSIONS, T.TPM_CC_NV_Read, nv_read + b"\0\3\0\0"))) == 0x125  # AUTH_MISSING
    assert _rc(fake(_raw(T.TPM_ST_SESSIONS, T.TPM_CC_NV_Read, nv_read + T.u32(3) + b"abc"))) == 0x144  # AUTHSIZE
    bad_pw = T.password_auth(b"wrong")
    assert _rc(fake(_raw(T.TPM_ST_SESSIONS, T.TPM_CC_NV_Read, nv_read + bad_pw + b"\0\3\0\0"))) == 0x98E
    assert _rc(fake(_raw(T.TPM_ST_SESSIONS, T.TPM_CC_NV_Read, nv_read + pw + b"\0\3"))) == 0x2DA  # INSUFFICIENT P2
    assert _rc(fake(_raw(T.TPM_ST_SESSIONS, T.TPM_CC_NV_Read, nv_read + pw + b"\0\3\0\0\0"))) == 0x095  # trailing
    assert _rc(fake(_raw(T.TPM_ST_SESSIONS, T.TPM_CC_NV_Read, nv_read + pw + b"\0\4\0\0"))) == 0x146  # NV_RANGE
    missing = T.u32(T.TPM_RH_OWNER) + T.u32(0x01500001)
    assert _rc(fake(_raw(T.TPM_ST_SESSIONS, T.TPM_CC_NV_Read, missing + pw + b"\0\3\0\0"))) == 0x28B  # HANDLE H2
    sha512_sel = T.u32(1) + T.u16(T.TPM_ALG_SHA512) + b"\3\xff\xff\xff"
    assert _rc(fake(_raw(T.TPM_ST_NO_SESSIONS, T.TPM_CC_PCR_Read, sha512_sel))) == 0x1C3  # TPM_RC_HASH P1
    ok = fake(_raw(T.TPM_ST_SESSIONS, T.TPM_CC_NV_Read, nv_read + pw + b"\0\3\0\0"))
    # TPM_ST_SESSIONS response: header, parameterSize, TPM2B data, one TPMS_AUTH_RESPONSE
    assert ok == _raw(T.TPM_ST_SESSIONS, 0, T.u32(5) + b"\0\3abc" + b"\0\0\0\0\0")


# --------------------------------------------------------------------------------------------- NV


def test_nv_read_follows_the_nv_buffer_size_and_round_trips() -> None:
    for max_buffer, reads in ((1024, 3), (512, 6)):
        fake = FakeTpm(max_nv_buffer=max_buffer)
        data = bytes(range(256)) * 10 + b"tail"
        fake.nv_preload(0x01C10000, data)
        assert T.Tpm(fake).nv_read(0x01C10000) == data
        assert fake.commands.count(T.TPM_CC_NV_Read) == reads


def test_nv_read_of_missing_or_unwritten_index_names_command_and_rc() -> None:
    fake = FakeTpm()
    tpm = T.Tpm(fake)
    with pytest.raises(T.TpmError) as missing:
        tpm.nv_read(0x01C10000)
    assert missing.value.rc == 0x18B and missing.value.command == "NV_ReadPublic"
    assert "TPM2_NV_ReadPublic" in missing.value.message and "TPM_RC_HANDLE (handle 1)" in missing.value.message
    tpm.nv_define(0x01C10000, 16)
    with pytest.raises(T.TpmError, match="never been written"):
        tpm.nv_read(0x01C10000)
    assert not tpm.nv_exists(0x01C10009) and tpm.nv_exists(0x01C10000)


def test_nv_write_defines_a_missing_index_with_owner_auth_and_calls_back() -> None:
    written: list[tuple[int, bytes]] = []
    fake = FakeTpm(on_nv_write=lambda index, data: written.append((index, data)))
    tpm = T.Tpm(fake)
    with pytest.raises(T.TpmError) as no_define:
        tpm.nv_write(USER_DATA_INDEX, b"u" * 64)
    assert no_define.value.rc == 0x18B
    tpm.nv_write(USER_DATA_INDEX, b"u" * 64, define_size=64)
    assert fake.commands.count(T.TPM_CC_NV_DefineSpace) == 1
    assert written == [(USER_DATA_INDEX, b"u" * 64)] and tpm.nv_read(USER_DATA_INDEX) == b"u" * 64
    public = tpm.nv_read_public(USER_DATA_INDEX)
    assert public.size == 64 and public.written and public.attributes & T.TPMA_NV_OWNERWRITE
    tpm.nv_write(USER_DATA_INDEX, b"v" * 64, define_size=64)  # exists now: written, not defined again
    assert fake.commands.count(T.TPM_CC_NV_DefineSpace) == 1 and fake.nv_data(USER_DATA_INDEX) == b"v" * 64
    assert written[-1] == (USER_DATA_INDEX, b"v" * 64)
    with pytest.raises(T.TpmError, match="do not fit"):
        tpm.nv_write(USER_DATA_INDEX, b"w" * 65)
    big = bytes(range(256)) * 5
    tpm.nv_write(0x01400003, big, define_size=len(big))  # chunked by TPM_PT_NV_BUFFER_MAX
    assert fake.commands.count(T.TPM_CC_NV_Write) == 2 + 2
    assert tpm.nv_read(0x01400003) == big
    tpm.nv_undefine(0x01400003)
    assert not tpm.nv_exists(0x01400003)


def test_nv_define_of_an_existing_index_is_tpm_rc_nv_defined() -> None:
    fake = FakeTpm()
    tpm = T.Tpm(fake)
    tpm.nv_define(USER_DATA_INDEX, 64)
    with pytest.raises(T.TpmError) as again:
        tpm.nv_define(USER_DATA_INDEX, 64)
    assert again.value.rc == T.TPM_RC_NV_DEFINED and "TPM_RC_NV_DEFINED" in again.value.message


# --------------------------------------------------------------------------------------------- PCRs


def test_pcr_read_needs_three_calls_for_24_pcrs(fake: FakeTpm) -> None:
    values = T.Tpm(fake).pcr_read(T.TPM_ALG_SHA256, range(24))
    assert values == {i: bytes([i + 1]) * 32 for i in range(24)}
    assert fake.commands.count(T.TPM_CC_PCR_Read) == 3  # at most 8 digests per response


def test_pcr_read_starts_again_when_a_pcr_changes_midway(fake: FakeTpm) -> None:
    def extend_once(code: int) -> None:
        if code == T.TPM_CC_PCR_Read and fake.pcr_update_counter == 0:
            fake.extend(T.TPM_ALG_SHA256, 23, b"event")

    fake.on_command = extend_once
    values = T.Tpm(fake).pcr_read(T.TPM_ALG_SHA256, range(24))
    assert values[23] == fake.pcrs[T.TPM_ALG_SHA256][23] != bytes([24]) * 32
    assert fake.commands.count(T.TPM_CC_PCR_Read) == 5  # 2 (the 2nd sees the counter moved), then 3 again


def test_pcr_read_of_an_unallocated_bank_fails() -> None:
    tpm = T.Tpm(FakeTpm(banks=(T.TPM_ALG_SHA256,)))
    with pytest.raises(T.TpmError, match="not allocated"):
        tpm.pcr_read(T.TPM_ALG_SHA1, range(24))
    assert tpm.allocated_pcrs() == [
        (T.TPM_ALG_SHA1, []),
        (T.TPM_ALG_SHA256, list(range(24))),
        (T.TPM_ALG_SHA384, []),
    ]


def test_retryable_warnings_are_retried_and_errors_are_not() -> None:
    fake = FakeTpm(inject={T.TPM_CC_PCR_Read: [0x922, 0x908]})  # TPM_RC_RETRY, TPM_RC_YIELDED
    sleeps: list[float] = []
    assert len(T.Tpm(fake, sleep=sleeps.append).pcr_read(T.TPM_ALG_SHA256, [0])) == 1
    assert len(sleeps) == 2
    fake.inject[T.TPM_CC_PCR_Read] = [0x101]
    with pytest.raises(T.TpmError, match=r"TPM2_PCR_Read: TPM_RC 0x101 TPM_RC_FAILURE"):
        T.Tpm(fake).pcr_read(T.TPM_ALG_SHA256, [0])


# --------------------------------------------------------------------------------------------- keys and quotes


def test_create_primary_and_quote_produce_a_verifiable_tpms_attest(fake: FakeTpm) -> None:
    tpm = T.Tpm(fake)
    handle, public = tpm.create_primary(T.TPM_RH_ENDORSEMENT, TEMPLATE)
    key, scheme_hash = gcp.parse_rsa_public(public)
    expected = fake.primary_key(T.TPM_RH_ENDORSEMENT, TEMPLATE).public_key()
    assert key.public_numbers() == expected.public_numbers() and scheme_hash == T.TPM_ALG_SHA256
    assert tpm.create_primary(T.TPM_RH_ENDORSEMENT, TEMPLATE)[1] == public  # same template, same key
    attest_bytes, signature = tpm.quote(handle, b"n" * 32, range(24), T.TPM_ALG_SHA1)
    attest = gcp.parse_attest(attest_bytes)
    assert (attest["magic"], attest["type"]) == (0xFF544347, 0x8018)
    assert attest["qualified_signer"] == T.u16(T.TPM_ALG_SHA256) + hashlib.sha256(public).digest()
    assert attest["extra_data"] == b"n" * 32 and attest["selections"] == [(T.TPM_ALG_SHA1, list(range(24)))]
    # pcrDigest uses the signing scheme's hash (SHA-256), not the bank's (SHA-1)
    assert attest["pcr_digest"] == hashlib.sha256(b"".join(bytes([i + 1]) * 20 for i in range(24))).digest()
    alg, sig_hash, raw = gcp.parse_signature(signature)
    assert (alg, sig_hash) == (T.TPM_ALG_RSASSA, T.TPM_ALG_SHA256)
    key.verify(raw, attest_bytes, padding.PKCS1v15(), hashes.SHA256())


def test_quote_refuses_a_64_byte_nonce_like_a_sha384_vtpm(fake: FakeTpm) -> None:
    tpm = T.Tpm(fake)
    handle, _ = tpm.create_primary(T.TPM_RH_ENDORSEMENT, TEMPLATE)
    with pytest.raises(T.TpmError) as too_long:
        tpm.quote(handle, b"r" * 64, range(24), T.TPM_ALG_SHA256)  # a raw binding digest
    assert too_long.value.rc == 0x1D5 and "TPM2_Quote" in too_long.value.message
    assert "TPM_RC_SIZE (parameter 1)" in too_long.value.message
    tpm.quote(handle, b"r" * 50, range(24), T.TPM_ALG_SHA256)  # sizeof(TPMT_HA) fits


def test_flush_unloads_and_objects_are_bounded(fake: FakeTpm) -> None:
    tpm = T.Tpm(fake)
    handles = [tpm.create_primary(T.TPM_RH_ENDORSEMENT, TEMPLATE)[0] for _ in range(3)]
    with pytest.raises(T.TpmError, match="TPM_RC_OBJECT_MEMORY"):
        tpm.create_primary(T.TPM_RH_ENDORSEMENT, TEMPLATE)
    tpm.flush(handles[0])
    with pytest.raises(T.TpmError) as gone:
        tpm.quote(handles[0], b"n", [0], T.TPM_ALG_SHA256)
    assert gone.value.rc == 0x18B
    with pytest.raises(T.TpmError) as twice:
        tpm.flush(handles[0])
    assert twice.value.rc == 0x1CB and "TPM_RC_HANDLE (parameter 1)" in twice.value.message


def test_create_primary_rejects_templates_the_tpm_would(fake: FakeTpm) -> None:
    tpm = T.Tpm(fake)
    with pytest.raises(T.TpmError) as bits:
        tpm.create_primary(T.TPM_RH_ENDORSEMENT, TEMPLATE.replace(T.u16(2048), T.u16(1024)))
    assert bits.value.rc == 0x2C7  # TPM_RC_KEY_SIZE, parameter 2 (inPublic)
    with pytest.raises(T.TpmError) as hierarchy:
        tpm.create_primary(0x40000099, TEMPLATE)
    assert hierarchy.value.rc == 0x184  # TPM_RC_VALUE, handle 1


# --------------------------------------------------------------------------------------------- response parser


OPERATIONS = [
    lambda t: t.nv_read_public(0x01C10000),
    lambda t: t.nv_read(0x01C10000),
    lambda t: t.nv_write(0x01400002, b"x" * 8, define_size=8),
    lambda t: t.pcr_read(T.TPM_ALG_SHA256, range(24)),
    lambda t: t.create_primary(T.TPM_RH_ENDORSEMENT, TEMPLATE),
    lambda t: t.quote(0x80000000, b"n", range(24), T.TPM_ALG_SHA256),
    lambda t: t.flush(0x80000000),
    lambda t: t.allocated_pcrs(),
    lambda t: t.tpm_property(T.TPM_PT_NV_BUFFER_MAX),
]


def _framed(tag: int, rc: int, body: bytes) -> bytes:
    return struct.pack(">HII", tag, 10 + len(body), rc) + body


RESPONSES = st.one_of(
    st.binary(max_size=64),
    st.builds(_framed, st.sampled_from([T.TPM_ST_NO_SESSIONS, T.TPM_ST_SESSIONS]), st.just(0), st.binary(max_size=700)),
    st.builds(_framed, st.just(T.TPM_ST_NO_SESSIONS), st.integers(0, 2**32 - 1), st.binary(max_size=8)),
)


@PROPS
@given(response=RESPONSES, operation=st.sampled_from(range(len(OPERATIONS))))
def test_response_parser_raises_only_tpm_error_on_arbitrary_bytes(response: bytes, operation: int) -> None:
    tpm = T.Tpm(lambda _command: response, sleep=lambda _s: None)
    try:
        OPERATIONS[operation](tpm)
    except T.TpmError:
        pass


@pytest.fixture(scope="module")
def recorded(ca: FakeCa, key_cache: dict) -> list[bytes]:
    """Every response of one genuine GCP attestation."""
    fake = gce_tpm(ca, key_cache)
    responses: list[bytes] = []

    def recording(command: bytes) -> bytes:
        responses.append(fake(command))
        return responses[-1]

    GcpVtpmProvider(recording).attest(report_data=bytes(64), nonce=None, public_key=None, now=NOW)
    return responses


@PROPS
@given(data=st.data())
def test_provider_fails_only_with_unavailable_on_corrupted_responses(recorded: list[bytes], data) -> None:
    """A vTPM answering any one response corrupted gives Unavailable (TpmError is one), nothing else."""
    target = data.draw(st.integers(0, len(recorded) - 1))
    original = recorded[target]
    position = data.draw(st.integers(0, len(original) - 1))
    mutated = data.draw(
        st.one_of(
            st.just(original[:position]),
            st.just(original[:position] + bytes([original[position] ^ data.draw(st.integers(1, 255))])
                    + original[position + 1 :]),
        )
    )
    answers = iter([*recorded[:target], mutated, *recorded[target + 1 :]])
    provider = GcpVtpmProvider(lambda _command: next(answers, b""))
    try:
        provider.attest(report_data=bytes(64), nonce=None, public_key=None, now=NOW)
    except Unavailable:
        pass  # anything else propagates and fails the test


# --------------------------------------------------------------------------------------------- device transport


@dataclass
class CharDevice:
    """The Linux TPM character-device protocol, emulated at the ``os`` calls tpm.py makes: one
    write is one command, one read returns the whole response of the last command."""

    fake: FakeTpm
    path: str
    opened: list[str]
    closed: list[int]

    @classmethod
    def install(cls, monkeypatch: pytest.MonkeyPatch, fake: FakeTpm, path: str) -> CharDevice:
        device = cls(fake, path, [], [])
        pending: dict[int, bytes] = {}

        def fake_open(p: str, flags: int) -> int:
            if p != path:
                raise FileNotFoundError(2, "No such file or directory")
            device.opened.append(p)
            return 1000 + len(device.opened)

        def fake_write(fd: int, data: bytes) -> int:
            assert fd not in pending, "a second command before the response was read"
            pending[fd] = fake(bytes(data))
            return len(data)

        def fake_read(fd: int, n: int) -> bytes:
            assert n >= 4096
            return pending.pop(fd)

        monkeypatch.setattr(T.os, "open", fake_open)
        monkeypatch.setattr(T.os, "write", fake_write)
        monkeypatch.setattr(T.os, "read", fake_read)
        monkeypatch.setattr(T.os, "close", device.closed.append)
        return device


def test_device_transport_keeps_one_descriptor_per_session(monkeypatch: pytest.MonkeyPatch, fake: FakeTpm) -> None:
    """The descriptor stays open across commands: tpmrm flushes a file's transient objects
    (our AK) when it is closed."""
    device = CharDevice.install(monkeypatch, fake, "/dev/tpmrm0")
    transport = T.device_transport("/dev/tpmrm0")
    tpm = T.Tpm(transport)
    handle, _ = tpm.create_primary(T.TPM_RH_ENDORSEMENT, TEMPLATE)
    tpm.quote(handle, b"n", range(24), T.TPM_ALG_SHA256)
    assert device.opened == ["/dev/tpmrm0"] and device.closed == []
    transport.close()
    assert device.closed == [1001]


def test_collect_on_a_detected_gce_vm_goes_through_the_device(
    ca: FakeCa, fake: FakeTpm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from teeprover.attestation import detect_platform

    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/tpmrm0").write_bytes(b"")
    (tmp_path / "sys/class/dmi/id").mkdir(parents=True)
    (tmp_path / "sys/class/dmi/id/product_name").write_text("Google Compute Engine\n")
    platform = detect_platform(tmp_path)
    assert platform == "gcp-vtpm"
    device = CharDevice.install(monkeypatch, fake, str(tmp_path / "dev/tpmrm0"))
    response = collect(platform, b"nonce", SPKI, HPKE, NOW, provider=default_provider(platform, str(tmp_path)))
    assert response["error"] is None, response["error"]
    evidence = base64.b64decode(response["attestation"])
    assert verify(evidence, platform="gcp-vtpm", roots=ca.roots(), now=NOW, report_data=rd_for(response)).ok
    assert len(device.opened) == 1 and device.closed == [1001] and fake.objects == {}


def test_device_transport_failure_names_the_device(tmp_path: Path) -> None:
    with pytest.raises(T.TpmError, match="tpmrm0"):
        T.Tpm(T.device_transport(str(tmp_path / "dev/tpmrm0"))).pcr_read(T.TPM_ALG_SHA256, [0])


# --------------------------------------------------------------------------------------------- GCP provider


def test_collect_gcp_vtpm_verifies_against_the_test_ca(ca: FakeCa, fake: FakeTpm) -> None:
    response, evidence = collect_gcp(fake)
    assert response["platform"] == "gcp-vtpm" and response["format"] == "gcp-vtpm-attestation-pb"
    rd = rd_for(response)
    result = verify(evidence, platform="gcp-vtpm", roots=ca.roots(), now=NOW, report_data=rd)
    assert result.ok, result
    # go-tpm-tools' Key.Attest: one quote per allocated bank, every PCR of it
    assert [q["bank"] for q in result.facts["quotes"]] == ["sha1", "sha256", "sha384"]
    assert all(q["pcrs"] == list(range(24)) for q in result.facts["quotes"])
    assert all(q["extra_data"] == hashlib.sha256(rd).hexdigest() for q in result.facts["quotes"])
    assert result.facts["measurements"]["sha256:pcr7"] == (b"\x08" * 32).hex()
    assert result.facts["chain"][-1] == "CN=fake EK/AK root"
    assert fake.objects == {} and fake.commands[-1] == T.TPM_CC_FlushContext  # the AK was flushed
    assert verify(evidence, platform="gcp-vtpm", now=NOW, report_data=rd).failed_step == "chain"  # not Google's CA


def test_collect_gcp_vtpm_without_a_nonce_still_binds_keys(ca: FakeCa, fake: FakeTpm) -> None:
    response, evidence = collect_gcp(fake, nonce=None)
    assert verify(evidence, platform="gcp-vtpm", roots=ca.roots(), now=NOW, report_data=rd_for(response, None)).ok


def test_gcp_evidence_binding_mutations_fail_at_nonce(ca: FakeCa, fake: FakeTpm) -> None:
    response, evidence = collect_gcp(fake)
    other = binding_digest(nonce=b"other", tls_spki_sha256=SPKI, hpke_public_key=HPKE,
                           timestamp_ms=response["metadata"]["timestamp_ms"])
    assert verify(evidence, platform="gcp-vtpm", roots=ca.roots(), now=NOW, report_data=other).failed_step == "nonce"
    # the raw caller nonce is not what the quote carries: only the binding is
    assert verify(evidence, platform="gcp-vtpm", roots=ca.roots(), now=NOW, nonce=b"nonce").failed_step == "nonce"


def _reencode(evidence: bytes, **changes) -> bytes:
    msg = gcp._parse(evidence)
    msg.update(changes)
    quotes = [(q["pcr_hash"], q["quote"], q["raw_sig"], q["pcrs"]) for q in msg["quotes"]]
    return encode_gcp_attestation(msg["ak_pub"], quotes, msg["ak_cert"], intermediates=tuple(msg["intermediates"]))


def test_gcp_encoding_round_trips_through_the_verifier_parser(fake: FakeTpm) -> None:
    _, evidence = collect_gcp(fake)
    assert _reencode(evidence) == evidence


def test_gcp_quote_signed_by_another_key_fails_at_signature(ca: FakeCa, fake: FakeTpm) -> None:
    response, evidence = collect_gcp(fake)
    _, foreign = collect_gcp(gce_tpm(ca))  # another vTPM: its own AK, certified by the same CA
    mixed = _reencode(foreign, ak_pub=gcp._parse(evidence)["ak_pub"], ak_cert=gcp._parse(evidence)["ak_cert"])
    result = verify(mixed, platform="gcp-vtpm", roots=ca.roots(), now=NOW)
    assert (result.failed_step, "does not verify with the AK" in result.message) == ("signature", True)


def test_gcp_pcr_value_changed_after_quoting_fails_at_signature(ca: FakeCa, fake: FakeTpm) -> None:
    response, evidence = collect_gcp(fake)
    msg = gcp._parse(evidence)
    sha256 = next(q for q in msg["quotes"] if q["pcr_hash"] == T.TPM_ALG_SHA256)
    sha256["pcrs"][7] = b"\x00" * 32
    result = verify(_reencode(evidence, quotes=msg["quotes"]), platform="gcp-vtpm", roots=ca.roots(), now=NOW,
                    report_data=rd_for(response))
    assert result.failed_step == "signature" and "pcrDigest" in result.message


def test_provider_quotes_again_when_a_pcr_is_extended_between_quote_and_read(ca: FakeCa, fake: FakeTpm) -> None:
    def extend_after_first_quote(code: int) -> None:
        if code == T.TPM_CC_Quote and fake.commands.count(T.TPM_CC_Quote) == 1:
            fake.extend(T.TPM_ALG_SHA1, 10, b"late event")

    fake.on_command = extend_after_first_quote
    response, evidence = collect_gcp(fake)
    assert fake.commands.count(T.TPM_CC_Quote) == 4  # sha1 twice, sha256, sha384
    assert verify(evidence, platform="gcp-vtpm", roots=ca.roots(), now=NOW, report_data=rd_for(response)).ok


def test_provider_flushes_the_ak_every_time(ca: FakeCa, fake: FakeTpm) -> None:
    for _ in range(fake.max_objects + 2):  # would run out of object slots without FlushContext
        collect_gcp(fake)
    del fake.nv[GCE_AK_CERT_NV_INDEX_RSA]
    response = collect("gcp-vtpm", b"n", None, None, NOW, provider=GcpVtpmProvider(fake))
    assert response["attestation"] is None and "no GCE AK certificate in NV 0x01c10000" in response["error"]
    assert fake.objects == {}  # flushed on the failure path too


def test_provider_refuses_an_ak_certificate_for_another_key(ca: FakeCa, fake: FakeTpm) -> None:
    fake.nv_preload(GCE_AK_CERT_NV_INDEX_RSA, ca.issue_ak(rsa.generate_private_key(65537, 2048).public_key()))
    response = collect("gcp-vtpm", b"n", None, None, NOW, provider=GcpVtpmProvider(fake))
    assert response["attestation"] is None and "does not certify the AK" in response["error"]


def test_provider_trims_nv_padding_and_adds_the_event_log(ca: FakeCa, fake: FakeTpm, tmp_path: Path) -> None:
    fake.nv_preload(GCE_AK_CERT_NV_INDEX_RSA, fake.nv_data(GCE_AK_CERT_NV_INDEX_RSA) + bytes(200))
    log = tmp_path / "binary_bios_measurements"
    log.write_bytes(b"\x00" * 32 + b"event log")
    provider = GcpVtpmProvider(fake, event_log_path=str(log))
    response = collect("gcp-vtpm", b"nonce", SPKI, HPKE, NOW, provider=provider)
    evidence = base64.b64decode(response["attestation"])
    from teeprover.attestation import _protobuf

    assert (3, log.read_bytes()) in _protobuf.fields(evidence)
    assert verify(evidence, platform="gcp-vtpm", roots=ca.roots(), now=NOW, report_data=rd_for(response)).ok


def test_default_provider_for_gcp_uses_dev_tpmrm0_under_root(tmp_path: Path) -> None:
    provider = default_provider("gcp-vtpm", str(tmp_path))
    assert isinstance(provider, GcpVtpmProvider)
    assert provider.transport.path == str(tmp_path / "dev/tpmrm0")  # type: ignore[attr-defined]
    response = collect("gcp-vtpm", b"n", None, None, NOW, provider=provider)
    assert response["attestation"] is None and "tpmrm0" in response["error"]


def test_cli_verifies_a_served_gcp_document_and_its_binding(
    ca: FakeCa, fake: FakeTpm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    response, _ = collect_gcp(fake)
    roots = tmp_path / "roots.pem"
    roots.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (ca.root, ca.intermediate)))
    served = tmp_path / "attestation.json"
    served.write_text(json.dumps(response))
    args = ["attestation", "verify", str(served), "--roots", str(roots), "--at", "2025-03-01T12:00:00Z"]
    assert cli_main(args) == 0, capsys.readouterr().out
    response["metadata"]["timestamp_ms"] += 1  # metadata that does not match what the quote binds
    served.write_text(json.dumps(response))
    assert cli_main(args) == 1
    assert "step nonce" in capsys.readouterr().out
