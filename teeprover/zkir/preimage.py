"""ProofPreimage V1, ProvingKeyMaterial V1 and the ``/prove`` request body.

CBOR (deterministic, RFC 8949 §4.2.1) with tags of our own:

=============  ==========================  ==================================================
tag            type                        content
=============  ==========================  ==================================================
0x7E000001     ProofPreimage V1            map, see :meth:`ProofPreimage.to_obj`
0x7E000002     ProvingKeyMaterial V1       map ``{prover_key, verifier_key, ir_source}`` (bstr)
0x7E000010     ZKIR v2 circuit             see :mod:`teeprover.zkir.ir`
=============  ==========================  ==================================================

The ``/prove`` body is the untagged array ``[preimage, key_material / null,
binding_input / null]``.  Field elements are 32-byte little-endian byte
strings, reduced modulo r.  A JSON form of the preimage (field elements as
decimal strings) serves the command line.  ``docs/formats.md`` has examples.

Midnight's own form (what its wallets hand a proof server, and what
``proofDataIntoSerializedPreimage`` of ``@midnight-ntwrk/onchain-runtime-v2``
writes) is read and written too: ``midnight:proof-preimage:`` followed by the
fields in order, in Midnight's serialization (midnight-ledger ``serialize``
crate): vectors are a compact length then their items; field elements are
compact integers; the option is one byte 0/1; the key location is a compact
length then UTF-8.  The versioned wrapper ``midnight:proof-preimage-versioned:``
+ ``0x01`` + the same body is read as well.  :func:`load_preimage` tells the
three forms apart by their first bytes.

Decoding anything malformed raises :class:`MalformedEncoding`; inputs over the
byte or item limits raise :class:`PayloadTooLarge`.  Nothing else escapes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cbor2

from teeprover.errors import MalformedEncoding, PayloadTooLarge
from teeprover.r1cs import R
from teeprover.zkir import _codec

TAG_PROOF_PREIMAGE_V1 = 0x7E000001
TAG_PROVING_KEY_MATERIAL_V1 = 0x7E000002

MAX_PREIMAGE_BYTES = 16 << 20
MAX_PROVE_REQUEST_BYTES = 512 << 20
MAX_FIELD_LIST = 1 << 20
MAX_KEY_LOCATION = 1024

MIDNIGHT_TAG = b"midnight:proof-preimage:"
MIDNIGHT_VERSIONED_TAG = b"midnight:proof-preimage-versioned:"
_MIDNIGHT_VERSION_V2 = 1  # ProofPreimageVersioned::V2 is written as the byte 1 (0 is an old, refused version)

_LISTS = ("inputs", "private_transcript", "public_transcript_inputs", "public_transcript_outputs")
_PREIMAGE_REQUIRED = (*_LISTS, "binding_input", "communications_commitment", "key_location")
_JSON_REQUIRED = ("version", *_LISTS, "binding_input", "key_location")


def _key_location(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedEncoding("preimage key_location must be a string")
    if len(value) > MAX_KEY_LOCATION or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise MalformedEncoding(f"preimage key_location must be at most {MAX_KEY_LOCATION} printable characters")
    return value


def _check_fe(x: object, what: str) -> None:
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < R:
        raise MalformedEncoding(f"preimage {what}: field elements must be integers in 0..r-1")


@dataclass(frozen=True)
class ProofPreimage:
    """What a wallet sends to be proven: the circuit inputs and transcripts (all field elements < r)."""

    inputs: tuple[int, ...]
    private_transcript: tuple[int, ...] = ()
    public_transcript_inputs: tuple[int, ...] = ()
    public_transcript_outputs: tuple[int, ...] = ()
    binding_input: int = 0
    communications_commitment: tuple[int, int] | None = None  # (commitment, randomness)
    key_location: str = ""

    def __post_init__(self) -> None:
        for name in _LISTS:
            values = tuple(getattr(self, name))
            for x in values:
                _check_fe(x, name)
            object.__setattr__(self, name, values)
        _check_fe(self.binding_input, "binding_input")
        if self.communications_commitment is not None:
            cc = tuple(self.communications_commitment)
            if len(cc) != 2:
                raise MalformedEncoding("communications_commitment must be (commitment, randomness)")
            for x in cc:
                _check_fe(x, "communications_commitment")
            object.__setattr__(self, "communications_commitment", cc)
        _key_location(self.key_location)

    # ----------------------------------------------------------- CBOR
    def to_obj(self) -> cbor2.CBORTag:
        cc = self.communications_commitment
        return cbor2.CBORTag(TAG_PROOF_PREIMAGE_V1, {
            **{name: [_codec.fe_to_bytes(x) for x in getattr(self, name)] for name in _LISTS},
            "binding_input": _codec.fe_to_bytes(self.binding_input),
            "communications_commitment": None if cc is None else [_codec.fe_to_bytes(cc[0]),
                                                                  _codec.fe_to_bytes(cc[1])],
            "key_location": self.key_location,
        })

    def to_cbor(self) -> bytes:
        return _codec.cbor_dumps(self.to_obj())

    @classmethod
    def from_obj(cls, obj: Any) -> ProofPreimage:
        if not isinstance(obj, cbor2.CBORTag) or obj.tag != TAG_PROOF_PREIMAGE_V1:
            raise MalformedEncoding(f"expected a ProofPreimage V1 (CBOR tag {TAG_PROOF_PREIMAGE_V1:#x})")
        m = _codec.expect_map(obj.value, "preimage", _PREIMAGE_REQUIRED)
        lists = {name: tuple(_codec.fe_from_bytes(x, f"preimage {name}[{i}]")
                             for i, x in enumerate(_codec.expect_list(m[name], f"preimage {name}",
                                                                      MAX_FIELD_LIST)))
                 for name in _LISTS}
        cc = m["communications_commitment"]
        if cc is not None:
            if not isinstance(cc, list) or len(cc) != 2:
                raise MalformedEncoding("preimage communications_commitment must be null or [commitment, randomness]")
            cc = (_codec.fe_from_bytes(cc[0], "preimage communications commitment"),
                  _codec.fe_from_bytes(cc[1], "preimage communications randomness"))
        return cls(**lists, binding_input=_codec.fe_from_bytes(m["binding_input"], "preimage binding_input"),
                   communications_commitment=cc, key_location=_key_location(m["key_location"]))

    @classmethod
    def from_cbor(cls, data: bytes, *, max_bytes: int = MAX_PREIMAGE_BYTES) -> ProofPreimage:
        _codec.check_size(data, max_bytes, "preimage")
        return cls.from_obj(_codec.cbor_loads(data, "preimage"))

    # ----------------------------------------------------------- JSON (CLI)
    def to_json_obj(self) -> dict[str, Any]:
        cc = self.communications_commitment
        return {
            "version": 1,
            **{name: [str(x) for x in getattr(self, name)] for name in _LISTS},
            "binding_input": str(self.binding_input),
            "communications_commitment": None if cc is None else {"commitment": str(cc[0]),
                                                                  "randomness": str(cc[1])},
            "key_location": self.key_location,
        }

    def to_json(self) -> bytes:
        return _codec.json_dumps(self.to_json_obj())

    @classmethod
    def from_json_obj(cls, obj: Any) -> ProofPreimage:
        m = _codec.expect_map(obj, "preimage", _JSON_REQUIRED, ("communications_commitment",))
        if m["version"] != 1 or isinstance(m["version"], bool):
            raise MalformedEncoding("preimage JSON: unsupported version (expected 1)")
        lists = {name: tuple(_codec.fe_from_json(x, f"preimage {name}[{i}]")
                             for i, x in enumerate(_codec.expect_list(m[name], f"preimage {name}",
                                                                      MAX_FIELD_LIST)))
                 for name in _LISTS}
        cc = m.get("communications_commitment")
        if cc is not None:
            cc_map = _codec.expect_map(cc, "preimage communications_commitment", ("commitment", "randomness"))
            cc = (_codec.fe_from_json(cc_map["commitment"], "preimage communications commitment"),
                  _codec.fe_from_json(cc_map["randomness"], "preimage communications randomness"))
        return cls(**lists, binding_input=_codec.fe_from_json(m["binding_input"], "preimage binding_input"),
                   communications_commitment=cc, key_location=_key_location(m["key_location"]))

    @classmethod
    def from_json(cls, data: bytes, *, max_bytes: int = MAX_PREIMAGE_BYTES) -> ProofPreimage:
        _codec.check_size(data, max_bytes, "preimage")
        return cls.from_json_obj(_codec.json_loads(data, "preimage"))

    # ----------------------------------------------------------- Midnight's serialization
    def to_midnight(self, *, versioned: bool = False) -> bytes:
        """Midnight's tagged bytes: ``midnight:proof-preimage:`` (or the versioned wrapper) + body."""
        out = bytearray(MIDNIGHT_VERSIONED_TAG + bytes([_MIDNIGHT_VERSION_V2]) if versioned else MIDNIGHT_TAG)
        for name in _LISTS:
            values = getattr(self, name)
            out += _compact(len(values))
            for x in values:
                out += _compact(x)
        out += _compact(self.binding_input)
        if self.communications_commitment is None:
            out.append(0)
        else:
            out.append(1)
            out += _compact(self.communications_commitment[0]) + _compact(self.communications_commitment[1])
        key = self.key_location.encode("utf-8")
        out += _compact(len(key)) + key
        return bytes(out)

    @classmethod
    def from_midnight(cls, data: bytes, *, max_bytes: int = MAX_PREIMAGE_BYTES) -> ProofPreimage:
        """Read Midnight's form (plain or versioned); trailing bytes, non-canonical integers and
        field elements >= r are refused as Midnight refuses them."""
        _codec.check_size(data, max_bytes, "preimage")
        raw = bytes(data)
        if raw.startswith(MIDNIGHT_TAG):
            reader = _MidnightReader(raw, len(MIDNIGHT_TAG))
        elif raw.startswith(MIDNIGHT_VERSIONED_TAG):
            reader = _MidnightReader(raw, len(MIDNIGHT_VERSIONED_TAG))
            version = reader.byte("version")
            if version != _MIDNIGHT_VERSION_V2:
                raise MalformedEncoding(f"Midnight preimage: unknown proof-preimage-versioned discriminant {version}")
        else:
            raise MalformedEncoding("Midnight preimage must begin with 'midnight:proof-preimage:'")
        lists = {name: reader.field_vector(name) for name in _LISTS}
        binding_input = reader.field("binding_input")
        option = reader.byte("communications_commitment option")
        cc: tuple[int, int] | None
        if option == 0:
            cc = None
        elif option == 1:
            cc = (reader.field("communications commitment"), reader.field("communications randomness"))
        else:
            raise MalformedEncoding(f"Midnight preimage communications_commitment: option byte {option} is not 0 or 1")
        key_bytes = reader.take(reader.length("key_location", 1, 4 * MAX_KEY_LOCATION), "key_location")
        try:
            key_location = key_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedEncoding("Midnight preimage key_location is not UTF-8") from None
        if reader.pos != len(raw):
            raise MalformedEncoding(f"Midnight preimage: {len(raw) - reader.pos} trailing bytes after key_location")
        return cls(**lists, binding_input=binding_input, communications_commitment=cc,
                   key_location=_key_location(key_location))


def is_midnight_preimage(data: bytes) -> bool:
    """Does ``data`` start with Midnight's tag (plain or versioned)?  CBOR and JSON never do."""
    head = bytes(data[:len(MIDNIGHT_VERSIONED_TAG)])
    return head.startswith(MIDNIGHT_TAG) or head.startswith(MIDNIGHT_VERSIONED_TAG)


# Midnight's compact integers (midnight-ledger serialize/src/util.rs, ``ScaleBigInt``): the low two bits of
# the first byte pick the mode.  Written by hand: no PyPI SCALE codec has this variant (its n-byte mode is
# "length - 4" like SCALE's, but values up to 67 bytes and Midnight's own canonicality rules).
_MODE_ONE, _MODE_TWO, _MODE_FOUR, _MODE_N = 0, 1, 2, 3
_SCALE_MAX_BYTES = 67


def _compact(value: int) -> bytes:
    """Midnight's canonical compact encoding of a non-negative integer below 2^536."""
    if value < 1 << 6:
        return bytes([value << 2 | _MODE_ONE])
    if value < 1 << 14:
        return (value << 2 | _MODE_TWO).to_bytes(2, "little")
    if value < 1 << 30:
        return (value << 2 | _MODE_FOUR).to_bytes(4, "little")
    n = (value.bit_length() + 7) // 8
    return bytes([(n - 4) << 2 | _MODE_N]) + value.to_bytes(n, "little")


class _MidnightReader:
    """A cursor over Midnight's bytes; every failure is MalformedEncoding / PayloadTooLarge."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise MalformedEncoding(f"Midnight preimage {what}: truncated (needs {n} more bytes, "
                                    f"{len(self.data) - self.pos} left)")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def compact(self, what: str) -> int:
        first = self.byte(what)
        mode = first & 0b11
        if mode == _MODE_ONE:
            return first >> 2
        if mode == _MODE_TWO:
            rest = self.take(1, what)
            if rest[0] == 0:  # the value fits the 1-byte mode
                raise MalformedEncoding(f"Midnight preimage {what}: non-canonical compact integer")
            return int.from_bytes(bytes([first]) + rest, "little") >> 2
        if mode == _MODE_FOUR:
            rest = self.take(3, what)
            if rest[1] == 0 and rest[2] == 0:  # the value fits the 2-byte mode
                raise MalformedEncoding(f"Midnight preimage {what}: non-canonical compact integer")
            return int.from_bytes(bytes([first]) + rest, "little") >> 2
        body = self.take((first >> 2) + 4, what)
        if body[-1] == 0:  # a shorter n-byte form exists; Midnight refuses a zero top byte
            raise MalformedEncoding(f"Midnight preimage {what}: non-canonical compact integer")
        return int.from_bytes(body, "little")

    def field(self, what: str) -> int:
        x = self.compact(what)
        if x >= R:
            raise MalformedEncoding(f"Midnight preimage {what}: field element is not below r")
        return x

    def length(self, what: str, min_item_bytes: int, limit: int) -> int:
        """A vector or string length (Midnight reads a u32), bounded by the bytes left and by ``limit``."""
        n = self.compact(f"{what} length")
        if n >= 1 << 32:
            raise MalformedEncoding(f"Midnight preimage {what}: length out of range for u32")
        left = len(self.data) - self.pos
        if n * min_item_bytes > left:
            raise MalformedEncoding(f"Midnight preimage {what}: declares {n} items, only {left} bytes left")
        if n > limit:
            raise PayloadTooLarge(f"Midnight preimage {what}: {n} items, the limit is {limit}",
                                  details={"size": n, "limit": limit})
        return n

    def field_vector(self, what: str) -> tuple[int, ...]:
        n = self.length(what, 1, MAX_FIELD_LIST)
        return tuple(self.field(f"{what}[{i}]") for i in range(n))


def load_preimage(data: bytes, *, max_bytes: int = MAX_PREIMAGE_BYTES) -> ProofPreimage:
    """A preimage from CBOR, JSON or Midnight's ``midnight:proof-preimage:`` bytes (auto-detected)."""
    _codec.check_size(data, max_bytes, "preimage")
    if is_midnight_preimage(data):
        return ProofPreimage.from_midnight(data, max_bytes=max_bytes)
    if _codec.looks_like_json(data):
        return ProofPreimage.from_json(data, max_bytes=max_bytes)
    return ProofPreimage.from_cbor(data, max_bytes=max_bytes)


@dataclass(frozen=True)
class ProvingKeyMaterial:
    """Keys sent along with a request instead of being looked up by ``key_location``."""

    prover_key: bytes
    verifier_key: bytes
    ir_source: bytes

    def to_obj(self) -> cbor2.CBORTag:
        return cbor2.CBORTag(TAG_PROVING_KEY_MATERIAL_V1, {
            "prover_key": self.prover_key, "verifier_key": self.verifier_key, "ir_source": self.ir_source})

    def to_cbor(self) -> bytes:
        return _codec.cbor_dumps(self.to_obj())

    @classmethod
    def from_obj(cls, obj: Any) -> ProvingKeyMaterial:
        if not isinstance(obj, cbor2.CBORTag) or obj.tag != TAG_PROVING_KEY_MATERIAL_V1:
            raise MalformedEncoding(f"expected ProvingKeyMaterial V1 (CBOR tag {TAG_PROVING_KEY_MATERIAL_V1:#x})")
        m = _codec.expect_map(obj.value, "key material", ("prover_key", "verifier_key", "ir_source"))
        for name in ("prover_key", "verifier_key", "ir_source"):
            if not isinstance(m[name], bytes):
                raise MalformedEncoding(f"key material {name} must be a byte string")
        return cls(m["prover_key"], m["verifier_key"], m["ir_source"])

    @classmethod
    def from_cbor(cls, data: bytes, *, max_bytes: int = MAX_PROVE_REQUEST_BYTES) -> ProvingKeyMaterial:
        _codec.check_size(data, max_bytes, "key material")
        return cls.from_obj(_codec.cbor_loads(data, "key material"))


@dataclass(frozen=True)
class ProveRequest:
    """The ``/prove`` body ``[preimage, key_material | null, binding_input | null]``.

    A non-null ``binding_input`` replaces the preimage's own (see :meth:`effective_preimage`).
    """

    preimage: ProofPreimage
    key_material: ProvingKeyMaterial | None = None
    binding_input: int | None = None

    def effective_preimage(self) -> ProofPreimage:
        if self.binding_input is None:
            return self.preimage
        return replace(self.preimage, binding_input=self.binding_input)

    def to_cbor(self) -> bytes:
        return _codec.cbor_dumps([
            self.preimage.to_obj(),
            None if self.key_material is None else self.key_material.to_obj(),
            None if self.binding_input is None else _codec.fe_to_bytes(self.binding_input),
        ])

    @classmethod
    def from_cbor(cls, data: bytes, *, max_bytes: int = MAX_PROVE_REQUEST_BYTES) -> ProveRequest:
        _codec.check_size(data, max_bytes, "prove request")
        obj = _codec.cbor_loads(data, "prove request")
        if not isinstance(obj, list) or len(obj) != 3:
            raise MalformedEncoding("prove request must be [preimage, key_material | null, binding_input | null]")
        preimage = ProofPreimage.from_obj(obj[0])
        keys = None if obj[1] is None else ProvingKeyMaterial.from_obj(obj[1])
        binding = None if obj[2] is None else _codec.fe_from_bytes(obj[2], "prove request binding_input")
        return cls(preimage, keys, binding)
