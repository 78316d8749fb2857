"""A TPM 2.0 simulator for tests that follows the TCG command / response wire format exactly.

It is a ``bytes -> bytes`` transport: each call takes one command buffer and returns the one
response buffer a TPM would, marshalled per TCG "TPM 2.0 Library" Part 1 §18 (command and
response structure) and Part 2 (structures), big-endian.  Each command is parsed in full -
tag, commandSize, commandCode, handle area, authorisation area (password sessions), then the
parameters - and rejected with the response code a reference TPM gives (Part 2 §6.6):

- header:  TPM_RC_BAD_TAG, TPM_RC_COMMAND_SIZE, TPM_RC_COMMAND_CODE;
- handles: TPM_RC_VALUE / TPM_RC_HANDLE + handle number; auth area: TPM_RC_AUTHSIZE,
  TPM_RC_AUTH_MISSING, TPM_RC_AUTH_CONTEXT, TPM_RC_AUTH_FAIL + session number;
- parameters: TPM_RC_INSUFFICIENT / TPM_RC_SIZE / TPM_RC_VALUE / TPM_RC_HASH / ... + parameter
  number; trailing bytes: TPM_RC_SIZE.

Commands (Part 3 section numbers): NV_DefineSpace §31.3, NV_UndefineSpace §31.4, NV_Write
§31.7, NV_Read §31.13, NV_ReadPublic §31.6, PCR_Read §22.4, CreatePrimary §24.1, Quote §18.4,
FlushContext §28.4, GetCapability §30.2 (TPM_CAP_PCRS, TPM_CAP_TPM_PROPERTIES).

State: NV indices (preloadable; ``on_nv_write(index, data)`` runs after every write, so a test
can regenerate e.g. an Azure HCL report), PCR banks sha1 / sha256 / sha384 (preloadable,
``extend()``), transient objects (at most ``max_objects`` loaded: TPM_RC_OBJECT_MEMORY).
CreatePrimary supports what AK templates hold - RSA-2048 signing keys - and returns a real
key generated with ``cryptography``, the same one for the same hierarchy and template (a real
TPM derives primaries from the hierarchy seed), with a real TPMT_PUBLIC.  Quote builds a real
TPMS_ATTEST (TPM_GENERATED, TPM_ST_ATTEST_QUOTE, qualifiedSigner = key name, extraData,
clockInfo, firmwareVersion, TPMS_QUOTE_INFO) and signs it RSASSA-PKCS1-v1_5 with the key's
scheme hash.  The largest implemented digest is SHA-384, so a TPM2B_DATA (qualifyingData)
holds at most 50 bytes, as on GCE's and Azure's vTPMs.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from teeprover.attestation import tpm as T

# Response codes (Part 2 §6.6.3)
RC_SUCCESS = 0x000
RC_BAD_TAG = 0x01E
RC_AUTH_MISSING = T.RC_VER1 + 0x25
RC_COMMAND_SIZE = T.RC_VER1 + 0x42
RC_COMMAND_CODE = T.RC_VER1 + 0x43
RC_AUTHSIZE = T.RC_VER1 + 0x44
RC_AUTH_CONTEXT = T.RC_VER1 + 0x45
RC_NV_RANGE = T.RC_VER1 + 0x46
RC_NV_AUTHORIZATION = T.RC_VER1 + 0x49
RC_NV_UNINITIALIZED = T.RC_VER1 + 0x4A
RC_NV_SPACE = T.RC_VER1 + 0x4B
RC_NV_DEFINED = T.TPM_RC_NV_DEFINED
RC_ATTRIBUTES = T.RC_FMT1 + 0x02
RC_HASH = T.RC_FMT1 + 0x03
RC_VALUE = T.RC_FMT1 + 0x04
RC_KEY_SIZE = T.RC_FMT1 + 0x07
RC_TYPE = T.RC_FMT1 + 0x0A
RC_HANDLE = T.TPM_RC_HANDLE
RC_AUTH_FAIL = T.RC_FMT1 + 0x0E
RC_SCHEME = T.RC_FMT1 + 0x12
RC_SIZE = T.RC_FMT1 + 0x15
RC_SYMMETRIC = T.RC_FMT1 + 0x16
RC_INSUFFICIENT = T.RC_FMT1 + 0x1A
RC_KEY = T.RC_FMT1 + 0x1C
RC_OBJECT_MEMORY = T.RC_WARN + 0x02


def H(rc: int, n: int) -> int:  # noqa: N802 - the spec's TPM_RC_H + TPM_RC_n
    return rc | (n << 8)


def P(rc: int, n: int) -> int:  # noqa: N802
    return rc | T.RC_P | (n << 8)


def S(rc: int, n: int) -> int:  # noqa: N802
    return rc | T.RC_S | (n << 8)


class _Rc(Exception):
    def __init__(self, rc: int) -> None:
        super().__init__(f"0x{rc:03x}")
        self.rc = rc


HASH_FUNCS = {T.TPM_ALG_SHA1: "sha1", T.TPM_ALG_SHA256: "sha256", T.TPM_ALG_SHA384: "sha384"}
CRYPTO_HASHES: dict[int, type[hashes.SHA1 | hashes.SHA256 | hashes.SHA384]] = {
    T.TPM_ALG_SHA1: hashes.SHA1, T.TPM_ALG_SHA256: hashes.SHA256, T.TPM_ALG_SHA384: hashes.SHA384
}
MAX_DIGEST = 48  # SHA-384 is the largest implemented hash
TPM2B_DATA_MAX = 2 + MAX_DIGEST  # sizeof(TPMT_HA)
MAX_COMMAND_SIZE = 4096
MAX_NV_INDEX_SIZE = 2048
TPMA_OBJECT_RESTRICTED, TPMA_OBJECT_DECRYPT, TPMA_OBJECT_SIGN = 1 << 16, 1 << 17, 1 << 18
TPMA_NV_POLICYREAD, TPMA_NV_POLICYWRITE = 1 << 19, 1 << 3
TPM_NT_MASK = 0xF0
HIERARCHIES = (T.TPM_RH_OWNER, T.TPM_RH_ENDORSEMENT, T.TPM_RH_PLATFORM, T.TPM_RH_NULL)


class _Params:
    """Unmarshals one parameter at a time, numbering them for the response code."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos, self.n = data, 0, 0

    def next(self) -> _Params:
        self.n += 1
        return self

    def take(self, k: int) -> bytes:
        if self.pos + k > len(self.data):
            raise _Rc(P(RC_INSUFFICIENT, self.n))
        out = self.data[self.pos : self.pos + k]
        self.pos += k
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def tpm2b(self, limit: int) -> bytes:
        size = self.u16()
        if size > limit:
            raise _Rc(P(RC_SIZE, self.n))
        return self.take(size)

    def sized(self, limit: int) -> _Params:
        """A TPM2B wrapping a structure: its size must be non-zero and match the structure exactly."""
        body = self.tpm2b(limit)
        if not body:
            raise _Rc(P(RC_SIZE, self.n))
        inner = _Params(body)
        inner.n = self.n
        return inner

    def done(self) -> None:
        if self.pos != len(self.data):
            raise _Rc(RC_SIZE)

    def done_inner(self) -> None:
        if self.pos != len(self.data):
            raise _Rc(P(RC_SIZE, self.n))

    def hash_alg(self, allow_null: bool = False) -> int:
        alg = self.u16()
        if alg not in HASH_FUNCS and not (allow_null and alg == T.TPM_ALG_NULL):
            raise _Rc(P(RC_HASH, self.n))
        return alg

    def pcr_selections(self) -> list[tuple[int, list[int]]]:
        count = self.u32()
        if count > len(HASH_FUNCS):  # HASH_COUNT
            raise _Rc(P(RC_SIZE, self.n))
        out = []
        for _ in range(count):
            alg = self.hash_alg()
            size = self.u8()
            if size != T.PCR_SELECT_BYTES:  # PCR_SELECT_MIN == PCR_SELECT_MAX == 3
                raise _Rc(P(RC_VALUE, self.n))
            bitmap = self.take(size)
            out.append((alg, [i for i in range(size * 8) if bitmap[i // 8] >> (i % 8) & 1]))
        return out


@dataclass
class NvIndex:
    attributes: int
    data: bytearray
    name_alg: int = T.TPM_ALG_SHA256
    auth_value: bytes = b""
    auth_policy: bytes = b""

    def public(self, index: int) -> bytes:
        return T.nv_public(index, len(self.data), self.attributes, self.name_alg, self.auth_policy)

    def name(self, index: int) -> bytes:
        return T.u16(self.name_alg) + hashlib.new(HASH_FUNCS[self.name_alg], self.public(index)).digest()


@dataclass
class LoadedKey:
    hierarchy: int
    public: bytes  # TPMT_PUBLIC
    name: bytes
    key: rsa.RSAPrivateKey
    attributes: int
    scheme: int
    scheme_hash: int


@dataclass
class RsaTemplate:
    name_alg: int
    attributes: int
    scheme: int
    scheme_hash: int
    key_bits: int
    exponent: int
    prefix: bytes  # everything before ``unique``


def parse_rsa_template(data: bytes, n: int) -> RsaTemplate:
    p = _Params(data)
    p.n = n
    if p.u16() != T.TPM_ALG_RSA:
        raise _Rc(P(RC_TYPE, n))  # the simulator implements RSA objects only
    name_alg = p.hash_alg()
    attributes = p.u32()
    p.tpm2b(MAX_DIGEST)  # authPolicy
    symmetric = p.u16()
    if symmetric != T.TPM_ALG_NULL:
        p.take(4)  # keyBits, mode
    scheme = p.u16()
    scheme_hash = p.hash_alg() if scheme != T.TPM_ALG_NULL else T.TPM_ALG_NULL
    key_bits = p.u16()
    exponent = p.u32()
    prefix = data[: p.pos]
    p.tpm2b(512)  # unique
    p.done_inner()
    if attributes & TPMA_OBJECT_SIGN:
        if symmetric != T.TPM_ALG_NULL:
            raise _Rc(P(RC_SYMMETRIC, n))
        if attributes & TPMA_OBJECT_RESTRICTED and attributes & TPMA_OBJECT_DECRYPT:
            raise _Rc(P(RC_ATTRIBUTES, n))
        if attributes & TPMA_OBJECT_RESTRICTED and scheme == T.TPM_ALG_NULL:
            raise _Rc(P(RC_SCHEME, n))
    else:
        raise _Rc(P(RC_ATTRIBUTES, n))  # only signing keys are simulated
    if scheme not in (T.TPM_ALG_NULL, T.TPM_ALG_RSASSA):
        raise _Rc(P(RC_SCHEME, n))
    if key_bits != 2048:
        raise _Rc(P(RC_KEY_SIZE, n))
    if exponent not in (0, 65537):
        raise _Rc(P(RC_VALUE, n))
    return RsaTemplate(name_alg, attributes, scheme, scheme_hash, key_bits, exponent, prefix)


@dataclass
class _Command:
    handles: int
    auth: int  # how many of the handles need authorisation
    run: Callable[[FakeTpm, list[int], _Params], tuple[list[int], bytes]]


@dataclass
class FakeTpm:
    banks: tuple[int, ...] = (T.TPM_ALG_SHA1, T.TPM_ALG_SHA256, T.TPM_ALG_SHA384)
    max_nv_buffer: int = 1024
    max_objects: int = 3
    nv_space: int = 64 * 1024
    firmware_version: int = 0x2016051100162800
    on_nv_write: Callable[[int, bytes], None] | None = None
    on_command: Callable[[int], None] | None = None
    nv: dict[int, NvIndex] = field(default_factory=dict)
    pcrs: dict[int, list[bytes]] = field(default_factory=dict)
    objects: dict[int, LoadedKey] = field(default_factory=dict)
    commands: list[int] = field(default_factory=list)  # command codes received, in order
    inject: dict[int, list[int]] = field(default_factory=dict)  # command code -> response codes to answer first
    pcr_update_counter: int = 0
    clock_ms: int = 8_219_159_479
    reset_count: int = 10
    _keys: dict[tuple[int, bytes], rsa.RSAPrivateKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for alg in self.banks:
            size = hashlib.new(HASH_FUNCS[alg]).digest_size
            self.pcrs.setdefault(alg, [bytes(size)] * T.PCR_COUNT)

    # ---------------------------------------------------------------- test helpers

    def nv_preload(self, index: int, data: bytes, attributes: int = T.NV_DEFAULT_ATTRIBUTES | T.TPMA_NV_NO_DA) -> None:
        self.nv[index] = NvIndex(attributes | T.TPMA_NV_WRITTEN, bytearray(data))

    def nv_data(self, index: int) -> bytes:
        return bytes(self.nv[index].data)

    def set_pcr(self, alg: int, index: int, value: bytes) -> None:
        self.pcrs[alg][index] = value
        self.pcr_update_counter += 1

    def extend(self, alg: int, index: int, data: bytes) -> None:
        """TPM2_PCR_Extend semantics: PCR = H(PCR || H(data)) in every bank given."""
        name = HASH_FUNCS[alg]
        self.set_pcr(alg, index, hashlib.new(name, self.pcrs[alg][index] + hashlib.new(name, data).digest()).digest())

    def primary_key(self, hierarchy: int, template: bytes) -> rsa.RSAPrivateKey:
        """The key CreatePrimary derives for this hierarchy and template (generated once)."""
        key = self._keys.get((hierarchy, template))
        if key is None:
            key = self._keys[(hierarchy, template)] = rsa.generate_private_key(65537, 2048)
        return key

    # ---------------------------------------------------------------- framing

    def __call__(self, command: bytes) -> bytes:
        try:
            tag, code, handles, sessions, params = self._parse_header(bytes(command))
            self.commands.append(code)
            pending = self.inject.get(code)
            if pending:
                raise _Rc(pending.pop(0))
            spec = COMMANDS[code]
            self._authorize(code, handles[: spec.auth], sessions)
            out_handles, out = spec.run(self, handles, params)
            if self.on_command is not None:
                self.on_command(code)
        except _Rc as err:
            return struct.pack(">HII", T.TPM_ST_NO_SESSIONS, 10, err.rc)
        self.clock_ms += 17
        body = b"".join(T.u32(h) for h in out_handles)
        if tag == T.TPM_ST_SESSIONS:
            body += T.u32(len(out)) + out
            for _handle, _password, attributes in sessions:
                body += T.tpm2b(b"") + bytes([attributes & 0x01]) + T.tpm2b(b"")
        else:
            body += out
        return struct.pack(">HII", tag, 10 + len(body), RC_SUCCESS) + body

    def _parse_header(self, command: bytes) -> tuple[int, int, list[int], list[tuple[int, bytes, int]], _Params]:
        if len(command) < 2:
            raise _Rc(RC_COMMAND_SIZE)
        tag = struct.unpack(">H", command[:2])[0]
        if tag not in (T.TPM_ST_NO_SESSIONS, T.TPM_ST_SESSIONS):
            raise _Rc(RC_BAD_TAG)
        if len(command) < 10:
            raise _Rc(RC_COMMAND_SIZE)
        size, code = struct.unpack(">II", command[2:10])
        if size != len(command) or size > MAX_COMMAND_SIZE:
            raise _Rc(RC_COMMAND_SIZE)
        spec = COMMANDS.get(code)
        if spec is None:
            raise _Rc(RC_COMMAND_CODE)
        pos = 10
        handles = []
        for i in range(spec.handles):
            if pos + 4 > len(command):
                raise _Rc(H(RC_INSUFFICIENT, i + 1))
            handles.append(struct.unpack(">I", command[pos : pos + 4])[0])
            pos += 4
        sessions: list[tuple[int, bytes, int]] = []
        if tag == T.TPM_ST_SESSIONS:
            if pos + 4 > len(command):
                raise _Rc(RC_AUTHSIZE)
            auth_size = struct.unpack(">I", command[pos : pos + 4])[0]
            pos += 4
            if auth_size < 9 or pos + auth_size > len(command):
                raise _Rc(RC_AUTHSIZE)
            area = _Params(command[pos : pos + auth_size])
            pos += auth_size
            while area.pos < len(area.data):
                number = len(sessions) + 1
                if number > 3:
                    raise _Rc(RC_AUTHSIZE)
                try:
                    handle = area.u32()
                    nonce = area.tpm2b(MAX_DIGEST)
                    attributes = area.u8()
                    password = area.tpm2b(MAX_DIGEST)
                except _Rc:
                    raise _Rc(RC_AUTHSIZE) from None
                if handle != T.TPM_RS_PW:  # only password sessions are simulated
                    raise _Rc(S(RC_HANDLE, number))
                if nonce:
                    raise _Rc(S(RC_SIZE, number))
                sessions.append((handle, password, attributes))
        elif spec.auth:
            raise _Rc(RC_AUTH_MISSING)
        return tag, code, handles, sessions, _Params(command[pos:])

    def _authorize(self, code: int, auth_handles: list[int], sessions: list[tuple[int, bytes, int]]) -> None:
        if len(sessions) < len(auth_handles):
            raise _Rc(RC_AUTH_MISSING)
        if len(sessions) > len(auth_handles):
            raise _Rc(RC_AUTH_CONTEXT)  # a password session needs a handle to authorise
        for number, (handle, (_, password, _)) in enumerate(zip(auth_handles, sessions, strict=True), start=1):
            if handle in self.nv:
                expected = self.nv[handle].auth_value
            else:
                expected = b""  # hierarchies and the objects we create have empty auth
            if password != expected:
                raise _Rc(S(RC_AUTH_FAIL, number))

    # ---------------------------------------------------------------- handle helpers

    def _nv_index(self, handle: int, n: int) -> NvIndex:
        if handle >> 24 != 0x01:
            raise _Rc(H(RC_VALUE, n))
        nv = self.nv.get(handle)
        if nv is None:
            raise _Rc(H(RC_HANDLE, n))
        return nv

    @staticmethod
    def _nv_auth(auth: int, index: int, nv: NvIndex, *, write: bool) -> None:
        if auth not in (T.TPM_RH_OWNER, T.TPM_RH_PLATFORM) and auth >> 24 != 0x01:
            raise _Rc(H(RC_VALUE, 1))
        owner, pp, own = (
            (T.TPMA_NV_OWNERWRITE, T.TPMA_NV_PPWRITE, T.TPMA_NV_AUTHWRITE)
            if write
            else (T.TPMA_NV_OWNERREAD, T.TPMA_NV_PPREAD, T.TPMA_NV_AUTHREAD)
        )
        allowed = {T.TPM_RH_OWNER: owner, T.TPM_RH_PLATFORM: pp, index: own}.get(auth, 0)
        if not nv.attributes & allowed:
            raise _Rc(RC_NV_AUTHORIZATION)

    # ---------------------------------------------------------------- commands

    def nv_define_space(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        if handles[0] not in (T.TPM_RH_OWNER, T.TPM_RH_PLATFORM):
            raise _Rc(H(RC_VALUE, 1))
        auth = p.next().tpm2b(MAX_DIGEST)
        pub = p.next().sized(256)
        index, name_alg, attributes = pub.u32(), pub.hash_alg(), pub.u32()
        policy, size = pub.tpm2b(MAX_DIGEST), pub.u16()
        pub.done_inner()
        p.done()
        if index >> 24 != 0x01:
            raise _Rc(P(RC_VALUE, 2))
        if index in self.nv:
            raise _Rc(RC_NV_DEFINED)
        if size > MAX_NV_INDEX_SIZE:
            raise _Rc(P(RC_SIZE, 2))
        readable = T.TPMA_NV_OWNERREAD | T.TPMA_NV_AUTHREAD | T.TPMA_NV_PPREAD | TPMA_NV_POLICYREAD
        writable = T.TPMA_NV_OWNERWRITE | T.TPMA_NV_AUTHWRITE | T.TPMA_NV_PPWRITE | TPMA_NV_POLICYWRITE
        if attributes & (T.TPMA_NV_WRITTEN | TPM_NT_MASK) or not attributes & readable or not attributes & writable:
            raise _Rc(P(RC_ATTRIBUTES, 2))  # ordinary indices only; WRITTEN is set by the TPM
        if sum(len(v.data) for v in self.nv.values()) + size > self.nv_space:
            raise _Rc(RC_NV_SPACE)
        self.nv[index] = NvIndex(attributes, bytearray(size), name_alg, auth, policy)
        return [], b""

    def nv_undefine_space(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        if handles[0] not in (T.TPM_RH_OWNER, T.TPM_RH_PLATFORM):
            raise _Rc(H(RC_VALUE, 1))
        self._nv_index(handles[1], 2)
        p.done()
        del self.nv[handles[1]]
        return [], b""

    def nv_read_public(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        nv = self._nv_index(handles[0], 1)
        p.done()
        return [], T.tpm2b(nv.public(handles[0])) + T.tpm2b(nv.name(handles[0]))

    def nv_read(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        auth, index = handles
        nv = self._nv_index(index, 2)
        size, offset = p.next().u16(), p.next().u16()
        p.done()
        self._nv_auth(auth, index, nv, write=False)
        if not nv.attributes & T.TPMA_NV_WRITTEN:
            raise _Rc(RC_NV_UNINITIALIZED)
        if size > self.max_nv_buffer:
            raise _Rc(P(RC_VALUE, 1))
        if offset + size > len(nv.data):
            raise _Rc(RC_NV_RANGE)
        return [], T.tpm2b(bytes(nv.data[offset : offset + size]))

    def nv_write(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        auth, index = handles
        nv = self._nv_index(index, 2)
        data = p.next().tpm2b(self.max_nv_buffer)
        offset = p.next().u16()
        p.done()
        self._nv_auth(auth, index, nv, write=True)
        if offset + len(data) > len(nv.data):
            raise _Rc(RC_NV_RANGE)
        nv.data[offset : offset + len(data)] = data
        nv.attributes |= T.TPMA_NV_WRITTEN
        if self.on_nv_write is not None:
            self.on_nv_write(index, bytes(nv.data))
        return [], b""

    def pcr_read(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        selections = p.next().pcr_selections()
        p.done()
        out_sel: list[tuple[int, list[int]]] = []
        digests: list[bytes] = []
        for alg, idxs in selections:
            taken = []
            if alg in self.pcrs:  # an unallocated bank reads as an empty selection
                for i in idxs:
                    if i < T.PCR_COUNT and len(digests) < T.MAX_PCR_DIGESTS:
                        taken.append(i)
                        digests.append(self.pcrs[alg][i])
            out_sel.append((alg, taken))
        body = T.u32(self.pcr_update_counter) + T.pcr_selection_list(out_sel)
        return [], body + T.u32(len(digests)) + b"".join(T.tpm2b(d) for d in digests)

    def create_primary(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        hierarchy = handles[0]
        if hierarchy not in HIERARCHIES:
            raise _Rc(H(RC_VALUE, 1))
        sensitive = p.next().sized(256)
        sensitive.tpm2b(MAX_DIGEST)  # userAuth
        sensitive.tpm2b(128)  # data
        sensitive.done_inner()
        template_bytes = p.next().sized(1024).data
        template = parse_rsa_template(template_bytes, 2)
        outside = p.next().tpm2b(TPM2B_DATA_MAX)
        creation_pcrs = p.next().pcr_selections()
        p.done()
        if len(self.objects) >= self.max_objects:
            raise _Rc(RC_OBJECT_MEMORY)
        key = self.primary_key(hierarchy, template_bytes)
        modulus = key.public_key().public_numbers().n.to_bytes(256, "big")
        public = template.prefix + T.tpm2b(modulus)
        name_hash = HASH_FUNCS[template.name_alg]
        name = T.u16(template.name_alg) + hashlib.new(name_hash, public).digest()
        handle = next(h for h in range(0x80000000, 0x80000100) if h not in self.objects)
        self.objects[handle] = LoadedKey(hierarchy, public, name, key, template.attributes, template.scheme,
                                         template.scheme_hash)
        parent = T.u32(hierarchy)
        pcr_digest = hashlib.new(name_hash, b"".join(self.pcrs[a][i] for a, idxs in creation_pcrs if a in self.pcrs
                                                     for i in idxs)).digest()
        creation_data = (T.pcr_selection_list(creation_pcrs) + T.tpm2b(pcr_digest) + b"\x00"
                         + T.u16(T.TPM_ALG_NULL) + T.tpm2b(parent) + T.tpm2b(parent) + T.tpm2b(outside))
        creation_hash = hashlib.new(name_hash, creation_data).digest()
        ticket = T.u16(T.TPM_ST_CREATION) + T.u32(hierarchy) + T.tpm2b(hashlib.sha256(b"ticket" + name).digest())
        out = T.tpm2b(public) + T.tpm2b(creation_data) + T.tpm2b(creation_hash) + ticket + T.tpm2b(name)
        return [handle], out

    def quote(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        key = self.objects.get(handles[0])
        if key is None:
            raise _Rc(H(RC_HANDLE, 1))
        qualifying = p.next().tpm2b(TPM2B_DATA_MAX)
        scheme = p.next().u16()
        scheme_hash = p.hash_alg() if scheme != T.TPM_ALG_NULL else T.TPM_ALG_NULL
        selections = p.next().pcr_selections()
        p.done()
        if not key.attributes & TPMA_OBJECT_SIGN:
            raise _Rc(H(RC_KEY, 1))
        if scheme == T.TPM_ALG_NULL:
            scheme, scheme_hash = key.scheme, key.scheme_hash
        elif key.scheme != T.TPM_ALG_NULL and (scheme, scheme_hash) != (key.scheme, key.scheme_hash):
            raise _Rc(P(RC_SCHEME, 2))
        if scheme != T.TPM_ALG_RSASSA:
            raise _Rc(P(RC_SCHEME, 2))
        quoted = [(alg, [i for i in idxs if i < T.PCR_COUNT] if alg in self.pcrs else []) for alg, idxs in selections]
        digest = hashlib.new(HASH_FUNCS[scheme_hash],
                             b"".join(self.pcrs[alg][i] for alg, idxs in quoted for i in idxs)).digest()
        attest = (
            T.u32(T.TPM_GENERATED_VALUE) + T.u16(T.TPM_ST_ATTEST_QUOTE) + T.tpm2b(key.name) + T.tpm2b(qualifying)
            + struct.pack(">QIIB", self.clock_ms, self.reset_count, 0, 1) + struct.pack(">Q", self.firmware_version)
            + T.pcr_selection_list(quoted) + T.tpm2b(digest)
        )
        signature = key.key.sign(attest, padding.PKCS1v15(), CRYPTO_HASHES[scheme_hash]())
        return [], T.tpm2b(attest) + T.u16(scheme) + T.u16(scheme_hash) + T.tpm2b(signature)

    def flush_context(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        handle = p.next().u32()
        p.done()
        if handle not in self.objects:
            raise _Rc(P(RC_HANDLE, 1))
        del self.objects[handle]
        return [], b""

    def get_capability(self, handles: list[int], p: _Params) -> tuple[list[int], bytes]:
        capability, prop, count = p.next().u32(), p.next().u32(), p.next().u32()
        p.done()
        if capability == T.TPM_CAP_PCRS:
            banks = [(alg, list(range(T.PCR_COUNT)) if alg in self.pcrs else []) for alg in HASH_FUNCS]
            return [], b"\x00" + T.u32(capability) + T.pcr_selection_list(banks)
        if capability == T.TPM_CAP_TPM_PROPERTIES:
            table = {
                T.TPM_PT_FIXED + 5: int.from_bytes(b"GOOG", "big"),  # TPM_PT_MANUFACTURER
                T.TPM_PT_FIXED + 18: T.PCR_COUNT,  # TPM_PT_PCR_COUNT
                T.TPM_PT_MAX_DIGEST: MAX_DIGEST,
                T.TPM_PT_NV_BUFFER_MAX: self.max_nv_buffer,
            }
            props = sorted((k, v) for k, v in table.items() if k >= prop)
            chosen, more = props[:count], len(props) > count
            body = T.u32(len(chosen)) + b"".join(T.u32(k) + T.u32(v) for k, v in chosen)
            return [], bytes([more]) + T.u32(capability) + body
        raise _Rc(P(RC_VALUE, 1))


COMMANDS: dict[int, _Command] = {
    T.TPM_CC_NV_DefineSpace: _Command(1, 1, FakeTpm.nv_define_space),
    T.TPM_CC_NV_UndefineSpace: _Command(2, 1, FakeTpm.nv_undefine_space),
    T.TPM_CC_NV_ReadPublic: _Command(1, 0, FakeTpm.nv_read_public),
    T.TPM_CC_NV_Read: _Command(2, 1, FakeTpm.nv_read),
    T.TPM_CC_NV_Write: _Command(2, 1, FakeTpm.nv_write),
    T.TPM_CC_PCR_Read: _Command(0, 0, FakeTpm.pcr_read),
    T.TPM_CC_CreatePrimary: _Command(1, 1, FakeTpm.create_primary),
    T.TPM_CC_Quote: _Command(1, 1, FakeTpm.quote),
    T.TPM_CC_FlushContext: _Command(0, 0, FakeTpm.flush_context),
    T.TPM_CC_GetCapability: _Command(0, 0, FakeTpm.get_capability),
}


def ak_template_rsa(unique: bytes = b"") -> bytes:
    """A GCE-style RSA AK template (TPMT_PUBLIC): restricted RSASSA-SHA256 signing key in the
    endorsement hierarchy (attributes fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|
    restricted|sign = 0x00050072, as in the ak_pub of the GCE sample attestation)."""
    return (
        T.u16(T.TPM_ALG_RSA) + T.u16(T.TPM_ALG_SHA256) + T.u32(0x00050072) + T.tpm2b(b"")
        + T.u16(T.TPM_ALG_NULL) + T.u16(T.TPM_ALG_RSASSA) + T.u16(T.TPM_ALG_SHA256) + T.u16(2048) + T.u32(0)
        + T.tpm2b(unique)
    )
