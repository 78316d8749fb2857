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

Decoding anything malformed raises :class:`MalformedEncoding`; inputs over the
byte or item limits raise :class:`PayloadTooLarge`.  Nothing else escapes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import cbor2

from teeprover.errors import MalformedEncoding
from teeprover.r1cs import R
from teeprover.zkir import _codec

TAG_PROOF_PREIMAGE_V1 = 0x7E000001
TAG_PROVING_KEY_MATERIAL_V1 = 0x7E000002

MAX_PREIMAGE_BYTES = 16 << 20
MAX_PROVE_REQUEST_BYTES = 512 << 20
MAX_FIELD_LIST = 1 << 20
MAX_KEY_LOCATION = 1024

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


def load_preimage(data: bytes, *, max_bytes: int = MAX_PREIMAGE_BYTES) -> ProofPreimage:
    """A preimage from CBOR or JSON bytes (auto-detected)."""
    _codec.check_size(data, max_bytes, "preimage")
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
