"""A small TPM 2.0 command client: the commands evidence collection needs, marshalled by hand.

Why hand-written: the only Python TPM stack, ``tpm2-pytss``, wraps the tpm2-tss C libraries
(libtss2-esys/-mu/-tctildr), which are not installable in our images; the dozen commands we
use are plain big-endian structures from the TCG "TPM 2.0 Library" Part 2 (structures) and
Part 3 (commands), so marshalling them ourselves is smaller than a native dependency.

Wire format (Part 1 §18, Part 3 §5)::

    command  = tag u16 | commandSize u32 | commandCode u32 | handles u32* |
               [authorizationSize u32 | TPMS_AUTH_COMMAND*]   (tag TPM_ST_SESSIONS only)
               | parameters
    response = tag u16 | responseSize u32 | responseCode u32 | handles u32* |
               [parameterSize u32] | parameters | [TPMS_AUTH_RESPONSE*]   (TPM_ST_SESSIONS only)

Authorisation is always the password session ``TPM_RS_PW`` with an empty password (the
owner and endorsement hierarchies of a cloud vTPM, and the NV indices we touch, have empty
auth).  Every response is checked against the command that caused it: header size, tag,
handle count, parameter size, auth area, and every TPM2B / list length against the bytes
that remain and a fixed maximum; anything else is a ``TpmError``.  A non-zero response code
is a ``TpmError`` that names the command and decodes the TPM_RC (Part 2 §6.6).

Transport: any ``bytes -> bytes`` callable taking one command and returning one response.
``device_transport()`` speaks the Linux TPM character-device protocol (one ``write`` is one
command, one ``read`` returns the whole response) on the in-kernel resource manager
``/dev/tpmrm0``, keeping the descriptor open: the kernel flushes the transient objects of a
``tpmrm`` file when it is closed, so a key created by one command must be used through the
same descriptor.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from ..errors import Unavailable

TpmTransport = Callable[[bytes], bytes]
R = TypeVar("R")

# --------------------------------------------------------------------------------------------- constants (Part 2)

TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS = 0x8001, 0x8002
TPM_ST_ATTEST_QUOTE, TPM_ST_CREATION = 0x8018, 0x8021
TPM_GENERATED_VALUE = 0xFF544347

TPM_CC_NV_UndefineSpace = 0x0122
TPM_CC_NV_DefineSpace = 0x012A
TPM_CC_CreatePrimary = 0x0131
TPM_CC_NV_Write = 0x0137
TPM_CC_NV_Read = 0x014E
TPM_CC_Quote = 0x0158
TPM_CC_FlushContext = 0x0165
TPM_CC_NV_ReadPublic = 0x0169
TPM_CC_GetCapability = 0x017A
TPM_CC_PCR_Read = 0x017E
COMMAND_NAMES = {
    TPM_CC_NV_UndefineSpace: "NV_UndefineSpace",
    TPM_CC_NV_DefineSpace: "NV_DefineSpace",
    TPM_CC_CreatePrimary: "CreatePrimary",
    TPM_CC_NV_Write: "NV_Write",
    TPM_CC_NV_Read: "NV_Read",
    TPM_CC_Quote: "Quote",
    TPM_CC_FlushContext: "FlushContext",
    TPM_CC_NV_ReadPublic: "NV_ReadPublic",
    TPM_CC_GetCapability: "GetCapability",
    TPM_CC_PCR_Read: "PCR_Read",
}

TPM_RH_OWNER = 0x40000001
TPM_RH_NULL = 0x40000007
TPM_RS_PW = 0x40000009
TPM_RH_ENDORSEMENT = 0x4000000B
TPM_RH_PLATFORM = 0x4000000C

TPM_ALG_RSA, TPM_ALG_SHA1, TPM_ALG_SHA256, TPM_ALG_SHA384, TPM_ALG_SHA512 = 0x0001, 0x0004, 0x000B, 0x000C, 0x000D
TPM_ALG_NULL, TPM_ALG_RSASSA, TPM_ALG_RSAPSS, TPM_ALG_ECDSA, TPM_ALG_ECC = 0x0010, 0x0014, 0x0016, 0x0018, 0x0023
TPM_ALG_SM2, TPM_ALG_ECSCHNORR, TPM_ALG_ECDAA = 0x001B, 0x001C, 0x001A
DIGEST_SIZES = {TPM_ALG_SHA1: 20, TPM_ALG_SHA256: 32, TPM_ALG_SHA384: 48, TPM_ALG_SHA512: 64}

TPM_CAP_PCRS, TPM_CAP_TPM_PROPERTIES = 0x00000005, 0x00000006
TPM_PT_FIXED = 0x100
TPM_PT_MAX_DIGEST = TPM_PT_FIXED + 32
TPM_PT_NV_BUFFER_MAX = TPM_PT_FIXED + 44

# TPMA_NV (Part 2 §13.4)
TPMA_NV_PPWRITE, TPMA_NV_OWNERWRITE, TPMA_NV_AUTHWRITE = 1 << 0, 1 << 1, 1 << 2
TPMA_NV_PPREAD, TPMA_NV_OWNERREAD, TPMA_NV_AUTHREAD = 1 << 16, 1 << 17, 1 << 18
TPMA_NV_NO_DA, TPMA_NV_WRITTEN = 1 << 25, 1 << 29
#: What ``tpm2_nvdefine -C o`` gives an ordinary index: read and write with owner or index auth.
NV_DEFAULT_ATTRIBUTES = TPMA_NV_OWNERWRITE | TPMA_NV_AUTHWRITE | TPMA_NV_OWNERREAD | TPMA_NV_AUTHREAD

PCR_COUNT = 24
PCR_SELECT_BYTES = 3  # PCR_SELECT_MIN for 24 PCRs
MAX_PCR_DIGESTS = 8  # a TPML_DIGEST in a PCR_Read response carries at most 8 values (Part 3 §22.4)
DEFAULT_NV_CHUNK = 1024  # MAX_NV_BUFFER_SIZE of the reference implementation
MAX_RESPONSE_BYTES = 4096  # TPM_BUFSIZE of the Linux TPM character device
MAX_NV_INDEX_BYTES = 16 * 1024  # larger than any certificate / template / report we read
MAX_TPM2B = 2048  # no TPM2B in the responses we parse is larger (TPM2B_PUBLIC_KEY_RSA is 512)
MAX_LIST = 64  # TPML counts: HASH_COUNT for PCR selections, a few dozen properties
RETRY_CODES = (0x922, 0x908, 0x90A)  # TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING: try again
MAX_RETRIES = 5

# --------------------------------------------------------------------------------------------- response codes

_FMT1 = {
    0x01: "TPM_RC_ASYMMETRIC", 0x02: "TPM_RC_ATTRIBUTES", 0x03: "TPM_RC_HASH", 0x04: "TPM_RC_VALUE",
    0x05: "TPM_RC_HIERARCHY", 0x07: "TPM_RC_KEY_SIZE", 0x08: "TPM_RC_MGF", 0x09: "TPM_RC_MODE",
    0x0A: "TPM_RC_TYPE", 0x0B: "TPM_RC_HANDLE", 0x0C: "TPM_RC_KDF", 0x0D: "TPM_RC_RANGE",
    0x0E: "TPM_RC_AUTH_FAIL", 0x0F: "TPM_RC_NONCE", 0x10: "TPM_RC_PP", 0x12: "TPM_RC_SCHEME",
    0x15: "TPM_RC_SIZE", 0x16: "TPM_RC_SYMMETRIC", 0x17: "TPM_RC_TAG", 0x18: "TPM_RC_SELECTOR",
    0x1A: "TPM_RC_INSUFFICIENT", 0x1B: "TPM_RC_SIGNATURE", 0x1C: "TPM_RC_KEY", 0x1D: "TPM_RC_POLICY_FAIL",
    0x1F: "TPM_RC_INTEGRITY", 0x20: "TPM_RC_TICKET", 0x21: "TPM_RC_RESERVED_BITS", 0x22: "TPM_RC_BAD_AUTH",
    0x23: "TPM_RC_EXPIRED", 0x24: "TPM_RC_POLICY_CC", 0x25: "TPM_RC_BINDING", 0x26: "TPM_RC_CURVE",
    0x27: "TPM_RC_ECC_POINT",
}
_VER1 = {
    0x00: "TPM_RC_INITIALIZE", 0x01: "TPM_RC_FAILURE", 0x03: "TPM_RC_SEQUENCE", 0x0B: "TPM_RC_PRIVATE",
    0x19: "TPM_RC_HMAC", 0x20: "TPM_RC_DISABLED", 0x21: "TPM_RC_EXCLUSIVE", 0x24: "TPM_RC_AUTH_TYPE",
    0x25: "TPM_RC_AUTH_MISSING", 0x26: "TPM_RC_POLICY", 0x27: "TPM_RC_PCR", 0x28: "TPM_RC_PCR_CHANGED",
    0x2D: "TPM_RC_UPGRADE", 0x2E: "TPM_RC_TOO_MANY_CONTEXTS", 0x2F: "TPM_RC_AUTH_UNAVAILABLE",
    0x30: "TPM_RC_REBOOT", 0x31: "TPM_RC_UNBALANCED", 0x42: "TPM_RC_COMMAND_SIZE", 0x43: "TPM_RC_COMMAND_CODE",
    0x44: "TPM_RC_AUTHSIZE", 0x45: "TPM_RC_AUTH_CONTEXT", 0x46: "TPM_RC_NV_RANGE", 0x47: "TPM_RC_NV_SIZE",
    0x48: "TPM_RC_NV_LOCKED", 0x49: "TPM_RC_NV_AUTHORIZATION", 0x4A: "TPM_RC_NV_UNINITIALIZED",
    0x4B: "TPM_RC_NV_SPACE", 0x4C: "TPM_RC_NV_DEFINED", 0x50: "TPM_RC_BAD_CONTEXT", 0x51: "TPM_RC_CPHASH",
    0x52: "TPM_RC_PARENT", 0x53: "TPM_RC_NEEDS_TEST", 0x54: "TPM_RC_NO_RESULT", 0x55: "TPM_RC_SENSITIVE",
}
_WARN = {
    0x01: "TPM_RC_CONTEXT_GAP", 0x02: "TPM_RC_OBJECT_MEMORY", 0x03: "TPM_RC_SESSION_MEMORY",
    0x04: "TPM_RC_MEMORY", 0x05: "TPM_RC_SESSION_HANDLES", 0x06: "TPM_RC_OBJECT_HANDLES",
    0x07: "TPM_RC_LOCALITY", 0x08: "TPM_RC_YIELDED", 0x09: "TPM_RC_CANCELED", 0x0A: "TPM_RC_TESTING",
    0x20: "TPM_RC_NV_RATE", 0x21: "TPM_RC_LOCKOUT", 0x22: "TPM_RC_RETRY", 0x23: "TPM_RC_NV_UNAVAILABLE",
}

RC_FMT1, RC_VER1, RC_WARN = 0x080, 0x100, 0x900
RC_P, RC_S = 0x040, 0x800  # format one: parameter / session (else handle) number in bits 8..11
TPM_RC_HANDLE = RC_FMT1 + 0x0B
TPM_RC_NV_DEFINED = RC_VER1 + 0x4C


def describe_rc(rc: int) -> str:
    """Short text for a TPM_RC, e.g. ``TPM_RC_SIZE (parameter 1)`` (Part 2 §6.6, Figures 26/27)."""
    if rc == 0:
        return "TPM_RC_SUCCESS"
    if rc >> 16:  # a TSS / resource-manager layer above the TPM (TSS2_RC_LAYER_SHIFT = 16)
        return f"layer {rc >> 16} code 0x{rc & 0xFFFF:x}"
    if rc & RC_FMT1:
        name = _FMT1.get(rc & 0x3F, f"format-one error 0x{rc & 0x3F:02x}")
        number = (rc >> 8) & 0xF
        if rc & RC_P:
            return f"{name} (parameter {number})"
        if rc & RC_S:
            return f"{name} (session {number & 0x7})"
        return f"{name} (handle {number & 0x7})" if number else name
    if rc & RC_VER1:
        if rc & 0x400:
            return f"vendor-defined 0x{rc:03x}"
        if rc & 0x800:
            return _WARN.get(rc & 0x7F, f"warning 0x{rc & 0x7F:02x}")
        return _VER1.get(rc & 0x7F, f"error 0x{rc & 0x7F:02x}")
    if rc == 0x01E:
        return "TPM_RC_BAD_TAG"
    return f"TPM 1.2 code 0x{rc:x}"


class TpmError(Unavailable):
    """A TPM command failed (``rc`` set) or the TPM / transport answered with malformed bytes."""

    def __init__(self, command: str, message: str, *, rc: int | None = None) -> None:
        super().__init__(f"TPM2_{command}: {message}", details={"command": command, **({"rc": rc} if rc else {})})
        self.command = command
        self.rc = rc

    @property
    def error_number(self) -> int | None:
        """The response code without handle / parameter / session numbers (format one)."""
        if self.rc is None:
            return None
        return self.rc & 0xBF if self.rc & RC_FMT1 else self.rc


# --------------------------------------------------------------------------------------------- marshalling


def u16(v: int) -> bytes:
    return struct.pack(">H", v)


def u32(v: int) -> bytes:
    return struct.pack(">I", v)


def tpm2b(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("TPM2B too long")
    return u16(len(data)) + data


def pcr_selection(hash_alg: int, pcrs: Iterable[int]) -> bytes:
    """TPMS_PCR_SELECTION: hash, sizeofSelect, pcrSelect bitmap (PCR n is bit n % 8 of byte n // 8)."""
    bitmap = bytearray(PCR_SELECT_BYTES)
    for i in pcrs:
        if not 0 <= i < PCR_COUNT:
            raise ValueError(f"PCR index {i} out of range 0..{PCR_COUNT - 1}")
        bitmap[i // 8] |= 1 << (i % 8)
    return u16(hash_alg) + bytes([PCR_SELECT_BYTES]) + bytes(bitmap)


def pcr_selection_list(selections: Iterable[tuple[int, Iterable[int]]]) -> bytes:
    """TPML_PCR_SELECTION."""
    items = [pcr_selection(alg, pcrs) for alg, pcrs in selections]
    return u32(len(items)) + b"".join(items)


def password_auth(password: bytes = b"") -> bytes:
    """The authorisation area with one TPMS_AUTH_COMMAND for the password session TPM_RS_PW."""
    session = u32(TPM_RS_PW) + tpm2b(b"") + b"\x00" + tpm2b(password)  # nonceCaller empty, attributes 0
    return u32(len(session)) + session


def nv_public(index: int, size: int, attributes: int, name_alg: int = TPM_ALG_SHA256, policy: bytes = b"") -> bytes:
    """TPMS_NV_PUBLIC."""
    return u32(index) + u16(name_alg) + u32(attributes) + tpm2b(policy) + u16(size)


class Reader:
    """Bounded big-endian reader; every failure is ``ValueError`` (turned into ``TpmError``)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"truncated: need {n} bytes at offset {self.pos}, have {len(self.data) - self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack(">Q", self.take(8))[0])

    def tpm2b(self, limit: int = MAX_TPM2B) -> bytes:
        n = self.u16()
        if n > limit:
            raise ValueError(f"TPM2B of {n} bytes exceeds the limit {limit}")
        return self.take(n)

    def count(self, limit: int = MAX_LIST) -> int:
        n = self.u32()
        if n > limit:
            raise ValueError(f"list of {n} entries exceeds the limit {limit}")
        return n

    def pcr_selections(self) -> list[tuple[int, list[int]]]:
        out = []
        for _ in range(self.count()):
            alg = self.u16()
            size = self.u8()
            if size > 32:  # PCR_SELECT_MAX of any real TPM is 3 or 4
                raise ValueError(f"sizeofSelect {size} too large")
            bitmap = self.take(size)
            out.append((alg, [i for i in range(size * 8) if bitmap[i // 8] >> (i % 8) & 1]))
        return out

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise ValueError(f"{len(self.data) - self.pos} trailing bytes")


def signature_length(data: bytes) -> int:
    """Length of the TPMT_SIGNATURE at the start of ``data`` (Part 2 §11.3.4)."""
    r = Reader(data)
    alg = r.u16()
    if alg == TPM_ALG_NULL:
        return r.pos
    r.u16()  # hash
    if alg in (TPM_ALG_RSASSA, TPM_ALG_RSAPSS):
        r.tpm2b()
    elif alg in (TPM_ALG_ECDSA, TPM_ALG_ECDAA, TPM_ALG_SM2, TPM_ALG_ECSCHNORR):
        r.tpm2b()
        r.tpm2b()
    else:
        raise ValueError(f"unknown signature algorithm 0x{alg:04x}")
    return r.pos


def _tpm2b_reader(limit: int) -> Callable[[Reader], bytes]:
    return lambda r: r.tpm2b(limit)


# --------------------------------------------------------------------------------------------- client


@dataclass(frozen=True)
class NvPublic:
    index: int
    name_alg: int
    attributes: int
    auth_policy: bytes
    size: int

    @property
    def written(self) -> bool:
        return bool(self.attributes & TPMA_NV_WRITTEN)


class Tpm:
    """TPM 2.0 commands over a ``bytes -> bytes`` transport.  Not thread-safe: one caller at a time."""

    def __init__(self, transport: TpmTransport, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.transport = transport
        self._sleep = sleep
        self._nv_chunk: int | None = None

    # ---------------------------------------------------------------- framing

    def execute(
        self,
        code: int,
        handles: Iterable[int] = (),
        params: bytes = b"",
        *,
        auth_handles: int = 0,
        response_handles: int = 0,
    ) -> tuple[list[int], bytes]:
        """Send one command; return (response handles, response parameters).

        ``auth_handles``: how many of ``handles`` need authorisation (each gets a password
        session, so the command is sent with TPM_ST_SESSIONS).
        """
        name = COMMAND_NAMES.get(code, f"0x{code:x}")
        handles = list(handles)
        sessions = auth_handles > 0
        body = b"".join(u32(h) for h in handles)
        if sessions:
            session = password_auth()[4:]  # one TPMS_AUTH_COMMAND per authorised handle
            body += u32(len(session) * auth_handles) + session * auth_handles
        body += params
        tag = TPM_ST_SESSIONS if sessions else TPM_ST_NO_SESSIONS
        command = u16(tag) + u32(10 + len(body)) + u32(code) + body
        for attempt in range(MAX_RETRIES + 1):
            try:
                response = self.transport(command)
            except OSError as exc:
                raise TpmError(name, f"transport failed: {exc}") from None
            rc = self._header(name, response)
            if rc in RETRY_CODES and attempt < MAX_RETRIES:
                self._sleep(0.01 * (attempt + 1))
                continue
            if rc != 0:
                raise TpmError(name, f"TPM_RC 0x{rc:03x} {describe_rc(rc)}", rc=rc)
            break
        try:
            return self._body(response, tag, response_handles, auth_handles)
        except ValueError as exc:
            raise TpmError(name, f"malformed response: {exc}") from None

    @staticmethod
    def _header(name: str, response: bytes) -> int:
        if not isinstance(response, (bytes, bytearray)):
            raise TpmError(name, "transport returned no bytes")
        if len(response) < 10 or len(response) > MAX_RESPONSE_BYTES:
            raise TpmError(name, f"malformed response: {len(response)} bytes")
        tag, size, rc = struct.unpack(">HII", response[:10])
        if size != len(response):
            raise TpmError(name, f"malformed response: header says {size} bytes, got {len(response)}")
        if tag not in (TPM_ST_NO_SESSIONS, TPM_ST_SESSIONS):
            raise TpmError(name, f"malformed response: tag 0x{tag:04x}")
        if rc != 0 and size != 10:
            raise TpmError(name, f"malformed response: error 0x{rc:x} with a {size}-byte body")
        return int(rc)

    @staticmethod
    def _body(response: bytes, tag: int, n_handles: int, n_sessions: int) -> tuple[list[int], bytes]:
        r = Reader(bytes(response))
        got_tag = r.u16()
        r.take(8)
        if got_tag != tag:
            raise ValueError(f"response tag 0x{got_tag:04x} for a command sent with 0x{tag:04x}")
        handles = [r.u32() for _ in range(n_handles)]
        if tag == TPM_ST_NO_SESSIONS:
            return handles, r.rest()
        size = r.u32()
        params = r.take(size)
        for _ in range(n_sessions):  # TPMS_AUTH_RESPONSE: nonceTPM, sessionAttributes, hmac
            r.tpm2b(64)
            r.u8()
            r.tpm2b(64)
        r.end()
        return handles, params

    @staticmethod
    def _parse(name: str, params: bytes, parse: Callable[[Reader], R]) -> R:
        r = Reader(params)
        try:
            out = parse(r)
            r.end()
        except ValueError as exc:
            raise TpmError(name, f"malformed response: {exc}") from None
        return out

    # ---------------------------------------------------------------- capabilities

    def _capability(self, capability: int, prop: int, count: int, parse: Callable[[Reader], R]) -> R:
        """TPM2_GetCapability (Part 3 §30.2): ``parse`` reads the TPMU_CAPABILITIES (moreData is ignored)."""
        _, params = self.execute(TPM_CC_GetCapability, params=u32(capability) + u32(prop) + u32(count))

        def whole(r: Reader) -> R:
            r.u8()  # moreData
            if r.u32() != capability:
                raise ValueError("capability in the response differs from the one asked for")
            return parse(r)

        return self._parse("GetCapability", params, whole)

    def allocated_pcrs(self) -> list[tuple[int, list[int]]]:
        """The PCR banks and the PCRs allocated in each (TPM_CAP_PCRS)."""
        return self._capability(TPM_CAP_PCRS, 0, 1, Reader.pcr_selections)

    def tpm_property(self, prop: int) -> int | None:
        """One TPM_PT_* property value, or None if the TPM does not report it."""
        def parse(r: Reader) -> list[tuple[int, int]]:  # TPML_TAGGED_TPM_PROPERTY
            return [(r.u32(), r.u32()) for _ in range(r.count())]

        values = self._capability(TPM_CAP_TPM_PROPERTIES, prop, 1, parse)
        return next((v for p, v in values if p == prop), None)

    def nv_chunk(self) -> int:
        """Bytes per NV_Read / NV_Write: TPM_PT_NV_BUFFER_MAX, at most 1024."""
        if self._nv_chunk is None:
            try:
                reported = self.tpm_property(TPM_PT_NV_BUFFER_MAX)
            except TpmError:
                reported = None
            self._nv_chunk = min(DEFAULT_NV_CHUNK, reported) if reported and reported >= 64 else DEFAULT_NV_CHUNK
        return self._nv_chunk

    # ---------------------------------------------------------------- NV

    def nv_read_public(self, index: int) -> NvPublic:
        """TPM2_NV_ReadPublic (Part 3 §31.6)."""
        _, params = self.execute(TPM_CC_NV_ReadPublic, [index])

        def parse(r: Reader) -> NvPublic:
            inner = Reader(r.tpm2b())
            pub = NvPublic(inner.u32(), inner.u16(), inner.u32(), inner.tpm2b(), inner.u16())
            inner.end()
            r.tpm2b()  # nvName
            if pub.index != index:
                raise ValueError(f"public area names index 0x{pub.index:08x}")
            return pub

        return self._parse("NV_ReadPublic", params, parse)

    def nv_exists(self, index: int) -> bool:
        try:
            self.nv_read_public(index)
        except TpmError as exc:
            if exc.error_number == TPM_RC_HANDLE:
                return False
            raise
        return True

    def nv_read(self, index: int, *, auth: int | None = None) -> bytes:
        """The whole content of an NV index (TPM2_NV_Read, Part 3 §31.13, in chunks).

        ``auth``: the authorising handle; by default the owner if the index allows
        TPMA_NV_OWNERREAD (what go-tpm-tools and ``tpm2_nvread -C o`` use), else the index.
        """
        pub = self.nv_read_public(index)
        if pub.size > MAX_NV_INDEX_BYTES:
            raise TpmError("NV_Read", f"index 0x{index:08x} holds {pub.size} bytes, limit {MAX_NV_INDEX_BYTES}")
        if not pub.written:
            raise TpmError("NV_Read", f"index 0x{index:08x} has never been written")
        if auth is None:
            auth = TPM_RH_OWNER if pub.attributes & TPMA_NV_OWNERREAD else index
        chunk = self.nv_chunk()
        out = bytearray()
        while len(out) < pub.size:
            want = min(chunk, pub.size - len(out))
            _, params = self.execute(TPM_CC_NV_Read, [auth, index], u16(want) + u16(len(out)), auth_handles=1)
            data = self._parse("NV_Read", params, _tpm2b_reader(want))
            if len(data) != want:
                raise TpmError("NV_Read", f"asked for {want} bytes, got {len(data)}")
            out += data
        return bytes(out)

    def nv_define(self, index: int, size: int, *, attributes: int = NV_DEFAULT_ATTRIBUTES,
                  hierarchy: int = TPM_RH_OWNER) -> None:
        """TPM2_NV_DefineSpace (Part 3 §31.3) with an empty index auth value."""
        params = tpm2b(b"") + tpm2b(nv_public(index, size, attributes))
        self.execute(TPM_CC_NV_DefineSpace, [hierarchy], params, auth_handles=1)

    def nv_undefine(self, index: int, *, hierarchy: int = TPM_RH_OWNER) -> None:
        """TPM2_NV_UndefineSpace (Part 3 §31.4)."""
        self.execute(TPM_CC_NV_UndefineSpace, [hierarchy, index], auth_handles=1)

    def nv_write(self, index: int, data: bytes, *, define_size: int | None = None,
                 attributes: int = NV_DEFAULT_ATTRIBUTES, auth: int | None = None) -> None:
        """Write ``data`` at offset 0 of an NV index (TPM2_NV_Write, Part 3 §31.7, in chunks).

        If the index does not exist and ``define_size`` is given, it is first defined with
        owner authorisation (``attributes``), as Azure's user-data index 0x01400002 needs.
        """
        try:
            pub = self.nv_read_public(index)
        except TpmError as exc:
            if exc.error_number != TPM_RC_HANDLE or define_size is None:
                raise
            if len(data) > define_size:
                raise TpmError("NV_DefineSpace", f"{len(data)} bytes do not fit a {define_size}-byte index") from None
            self.nv_define(index, define_size, attributes=attributes)
            pub = self.nv_read_public(index)
        if len(data) > pub.size:
            raise TpmError("NV_Write", f"{len(data)} bytes do not fit index 0x{index:08x} of {pub.size} bytes")
        if auth is None:
            auth = TPM_RH_OWNER if pub.attributes & TPMA_NV_OWNERWRITE else index
        chunk = self.nv_chunk()
        for offset in range(0, max(len(data), 1), chunk):
            self.execute(TPM_CC_NV_Write, [auth, index], tpm2b(data[offset : offset + chunk]) + u16(offset),
                         auth_handles=1)

    # ---------------------------------------------------------------- PCRs

    def pcr_read(self, hash_alg: int, pcrs: Iterable[int] = range(PCR_COUNT)) -> dict[int, bytes]:
        """TPM2_PCR_Read (Part 3 §22.4), repeated until every PCR asked for is read.

        A response carries at most 8 digests and says which PCRs they are; if the PCR update
        counter moves between two calls the whole read starts again (at most 3 times).
        """
        wanted = sorted(set(pcrs))
        size = DIGEST_SIZES.get(hash_alg)

        def parse(r: Reader) -> tuple[int, list[tuple[int, list[int]]], list[bytes]]:
            update = r.u32()
            selection = r.pcr_selections()
            digests = [r.tpm2b(64) for _ in range(r.count(MAX_PCR_DIGESTS))]
            return update, selection, digests

        for _ in range(3):
            values: dict[int, bytes] = {}
            counter: int | None = None
            while len(values) < len(wanted):
                remaining = [i for i in wanted if i not in values]
                _, params = self.execute(TPM_CC_PCR_Read, params=pcr_selection_list([(hash_alg, remaining)]))
                update, selection, digests = self._parse("PCR_Read", params, parse)
                got = [i for alg, idxs in selection for i in idxs]
                if any(alg != hash_alg for alg, idxs in selection if idxs):
                    raise TpmError("PCR_Read", "response selects another bank")
                if not got:
                    raise TpmError("PCR_Read", f"bank 0x{hash_alg:04x} is not allocated (no PCR values returned)")
                if len(got) != len(digests) or any(i not in remaining for i in got):
                    raise TpmError("PCR_Read", "response selection does not match its digests or the request")
                if size is not None and any(len(d) != size for d in digests):
                    raise TpmError("PCR_Read", f"digest sizes differ from {size} bytes")
                if counter is not None and update != counter:
                    break
                counter = update
                values.update(zip(got, digests, strict=True))
            else:
                return values
        raise TpmError("PCR_Read", "PCR values kept changing while being read")

    # ---------------------------------------------------------------- keys

    def create_primary(self, hierarchy: int, template: bytes) -> tuple[int, bytes]:
        """TPM2_CreatePrimary (Part 3 §24.1) with an empty auth value; (handle, TPMT_PUBLIC bytes)."""
        sensitive = tpm2b(tpm2b(b"") + tpm2b(b""))  # TPM2B_SENSITIVE_CREATE {userAuth, data}
        params = sensitive + tpm2b(template) + tpm2b(b"") + u32(0)  # outsideInfo, creationPCR (none)
        handles, out = self.execute(TPM_CC_CreatePrimary, [hierarchy], params, auth_handles=1, response_handles=1)

        def parse(r: Reader) -> bytes:
            public = r.tpm2b()
            r.tpm2b(4096)  # creationData
            r.tpm2b(64)  # creationHash
            r.u16()  # creationTicket: tag, hierarchy, digest
            r.u32()
            r.tpm2b(64)
            r.tpm2b(66)  # name
            return public

        public = self._parse("CreatePrimary", out, parse)
        if not 0x80000000 <= handles[0] <= 0x80FFFFFF:
            raise TpmError("CreatePrimary", f"returned handle 0x{handles[0]:08x} is not a transient object")
        return handles[0], public

    def quote(self, handle: int, nonce: bytes, pcrs: Iterable[int], hash_alg: int) -> tuple[bytes, bytes]:
        """TPM2_Quote (Part 3 §18.4) with the key's own scheme (inScheme TPM_ALG_NULL).

        Returns (TPMS_ATTEST bytes, TPMT_SIGNATURE bytes).  ``nonce`` becomes
        ``qualifyingData`` / ``extraData``; a TPM accepts at most the size of its largest
        digest plus 2 (50 bytes on a SHA-384 TPM).
        """
        params = tpm2b(nonce) + u16(TPM_ALG_NULL) + pcr_selection_list([(hash_alg, pcrs)])
        _, out = self.execute(TPM_CC_Quote, [handle], params, auth_handles=1)

        def parse(r: Reader) -> tuple[bytes, bytes]:
            attest = r.tpm2b()
            rest = r.rest()
            n = signature_length(rest)
            if n != len(rest):
                raise ValueError("trailing bytes after TPMT_SIGNATURE")
            return attest, rest

        return self._parse("Quote", out, parse)

    def flush(self, handle: int) -> None:
        """TPM2_FlushContext (Part 3 §28.4)."""
        self.execute(TPM_CC_FlushContext, params=u32(handle))


# --------------------------------------------------------------------------------------------- device


class DeviceTransport:
    """The Linux TPM character device (``/dev/tpmrm0``): one write = one command, one read = one response.

    The descriptor is opened at the first command and kept until ``close()``: ``tpmrm``
    flushes a file's transient objects when it is closed.  Calls are serialised.
    """

    def __init__(self, path: str = "/dev/tpmrm0") -> None:
        self.path = path
        self._fd: int | None = None
        self._lock = threading.Lock()

    def __call__(self, command: bytes) -> bytes:
        name = COMMAND_NAMES.get(int.from_bytes(command[6:10], "big"), "command")
        with self._lock:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
                written = os.write(self._fd, command)
                if written != len(command):
                    raise TpmError(name, f"{self.path} accepted {written} of {len(command)} command bytes")
                return os.read(self._fd, MAX_RESPONSE_BYTES)
            except OSError as exc:
                self._close()
                raise TpmError(name, f"{self.path}: {exc.strerror or exc}") from None

    def _close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            finally:
                self._fd = None

    def close(self) -> None:
        with self._lock:
            self._close()


def device_transport(path: str = "/dev/tpmrm0") -> DeviceTransport:
    return DeviceTransport(path)
