"""ZKIR v2: the circuit data type and its JSON / CBOR codecs.

The JSON form is exactly Midnight's ``.zkir`` file::

    {"version": {"major": 2, "minor": 0}, "num_inputs": 2,
     "do_communications_commitment": false,
     "instructions": [{"op": "add", "a": 0, "b": 1}, ...]}

The CBOR form is the same map (``version`` as the same ``{major, minor}`` map),
either bare or wrapped in our tag :data:`TAG_ZKIR_V2`.  :func:`to_cbor`
always writes the tagged, deterministic encoding, whose SHA-256 is
:meth:`Circuit.digest` (the cache key of compiled circuits and keys).

Validation is strict (see ``docs/zkir.md``): unknown ops, missing or extra
operands, operands naming a memory cell not yet defined, bit counts out of
range and oversized circuits are refused with :class:`MalformedEncoding` or
:class:`CircuitError` carrying the instruction index.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

import cbor2

from teeprover.errors import CircuitError, MalformedEncoding
from teeprover.r1cs import R
from teeprover.zkir import _codec
from teeprover.zkir.alignment import AlignmentError, bin_len, field_len, parse_alignment
from teeprover.zkir.instructions import OUTPUTS, RECORDS, SPECS, Instruction

TAG_ZKIR_V2 = 0x7E000010

# Hard limits so that hostile input cannot exhaust memory.  Either one alone
# already exceeds what fits in k = 24 once compiled.
MAX_INSTRUCTIONS = 1 << 21
MAX_NUM_INPUTS = 1 << 20
MAX_CIRCUIT_BYTES = 64 << 20

# Bit-count bounds (FR_BITS = 255, FR_BYTES_STORED * 8 = 248 in Midnight).
FR_BITS = 255
MAX_CONSTRAIN_BITS = FR_BITS - 1          # Midnight: "Excessive bit bound" for bits >= 255
MAX_DIV_MOD_BITS = 248                    # Midnight: "Excessive bit count" for bits > 248
MIN_RECONSTITUTE_BITS = 1                 # divisor would need 255 bits, which Midnight refuses
MAX_RECONSTITUTE_BITS = 248
MAX_LESS_THAN_BITS = 253                  # ours: a - b + 2^bits must fit 254 bits (unique decomposition)

_BITS_RANGE: dict[str, tuple[int, int]] = {
    "constrain_bits": (0, MAX_CONSTRAIN_BITS),
    "div_mod_power_of_two": (0, MAX_DIV_MOD_BITS),
    "reconstitute_field": (MIN_RECONSTITUTE_BITS, MAX_RECONSTITUTE_BITS),
    "less_than": (0, MAX_LESS_THAN_BITS),
}

_U32_MAX = (1 << 32) - 1
MAX_OPERAND_LIST = 1 << 16  # cells in one "idxs" operand (hash inputs)
# Bytes one persistent_hash may hash: 1024 SHA-256 blocks, already more than fits in k = 24.
MAX_PERSISTENT_HASH_BYTES = 1 << 16


def operand_names(op: str) -> tuple[str, ...]:
    return tuple(name for name, _ in SPECS[op])


@dataclass(frozen=True)
class Circuit:
    num_inputs: int
    do_communications_commitment: bool
    instructions: tuple[Instruction, ...]
    minor_version: int = 0

    @cached_property
    def num_declared_public_inputs(self) -> int:
        return sum(1 for ins in self.instructions if ins.op == "declare_pub_input")

    @property
    def num_public_inputs(self) -> int:
        """Binding input, the communications commitment when enabled, then each ``declare_pub_input``."""
        return 1 + int(self.do_communications_commitment) + self.num_declared_public_inputs

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "version": {"major": 2, "minor": self.minor_version},
            "num_inputs": self.num_inputs,
            "do_communications_commitment": self.do_communications_commitment,
            "instructions": [ins.to_json() for ins in self.instructions],
        }

    def to_json(self) -> bytes:
        return _codec.json_dumps(self.to_json_obj())

    def to_cbor(self) -> bytes:
        return _codec.cbor_dumps(cbor2.CBORTag(TAG_ZKIR_V2, self.to_json_obj()))

    @cached_property
    def _digest(self) -> bytes:
        return hashlib.sha256(self.to_cbor()).digest()

    def digest(self) -> bytes:
        """SHA-256 of the deterministic tagged CBOR encoding: the content address of this circuit."""
        return self._digest


# ---------------------------------------------------------------- immediates

def format_immediate(x: int) -> str:
    """Midnight's form: little-endian hex, trailing zero bytes dropped (at least one byte)."""
    raw = (x % R).to_bytes(32, "little").rstrip(b"\x00") or b"\x00"
    return raw.hex()


def parse_immediate(value: Any, where: str = "imm") -> int:
    """Parse an immediate as Midnight writes it (``"2a"``, ``"-01"``, ``"0x0100"``) or a JSON integer."""
    if isinstance(value, bool):
        raise MalformedEncoding(f"{where}: an immediate cannot be a boolean")
    if isinstance(value, int):
        if not -R < value < R:
            raise MalformedEncoding(f"{where}: immediate out of range for a field element")
        return value % R
    if not isinstance(value, str):
        raise MalformedEncoding(f"{where}: an immediate must be a hex string or an integer")
    text = value
    negate = text.startswith("-")
    if negate:
        text = text[1:]
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    if not text or len(text) % 2 or len(text) > 64 or not all(c in "0123456789abcdefABCDEF" for c in text):
        raise MalformedEncoding(f"{where}: immediate {value[:80]!r} is not little-endian hex of at most 32 bytes")
    x = int.from_bytes(bytes.fromhex(text), "little")
    if x >= R:
        raise MalformedEncoding(f"{where}: immediate out of range for a field element")
    return (-x) % R if negate else x


# ---------------------------------------------------------------- parsing

def _u32(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _U32_MAX:
        raise MalformedEncoding(f"{where}: expected an unsigned 32-bit integer")
    return value


def _cells(raw: Any, where: str, i: int, memory: int) -> tuple[int, ...]:
    if not isinstance(raw, list):
        raise CircuitError(f"{where}: expected a list of memory cells", instruction=i)
    if len(raw) > MAX_OPERAND_LIST:
        raise CircuitError(f"{where}: {len(raw)} cells exceed the limit {MAX_OPERAND_LIST}", instruction=i)
    cells = []
    for raw_cell in raw:
        try:
            cell = _u32(raw_cell, where)
        except MalformedEncoding as exc:
            raise CircuitError(exc.message, instruction=i) from None
        if cell >= memory:
            raise CircuitError(f"{where}: cell {cell} is not defined yet (memory has {memory} cells)",
                               instruction=i)
        cells.append(cell)
    return tuple(cells)


def _parse_instruction(obj: Any, i: int, memory: int, declared: int) -> tuple[Instruction, int]:
    if not isinstance(obj, dict):
        raise MalformedEncoding(f"instruction {i}: expected an object", details={"instruction": i})
    op = obj.get("op")
    if not isinstance(op, str):
        raise MalformedEncoding(f"instruction {i}: missing or non-string 'op'", details={"instruction": i})
    spec = SPECS.get(op)
    if spec is None:
        raise CircuitError(f"instruction {i}: unknown op {op[:40]!r}", instruction=i)
    names = {name for name, _ in spec}
    extra = sorted(str(k)[:40] for k in obj if k != "op" and k not in names)
    if extra:
        raise CircuitError(f"instruction {i} ({op}): unexpected operand(s) {', '.join(extra)}", instruction=i)
    args: list[Any] = []
    for name, kind in spec:
        where = f"instruction {i} ({op}) operand {name!r}"
        if kind == "guard":
            raw = obj.get(name)
            if raw is None:
                args.append(None)
                continue
        elif name not in obj:
            raise CircuitError(f"instruction {i} ({op}): missing operand {name!r}", instruction=i)
        else:
            raw = obj[name]
        if kind == "idxs":
            args.append(_cells(raw, where, i, memory))
            continue
        if kind == "alignment":
            try:
                args.append(parse_alignment(raw, where))
            except AlignmentError as exc:
                raise CircuitError(str(exc), instruction=i) from None
            continue
        try:
            if kind == "imm":
                args.append(parse_immediate(raw, where))
                continue
            value = _u32(raw, where)
        except MalformedEncoding as exc:
            raise CircuitError(exc.message, instruction=i) from None
        if kind in ("idx", "guard") and value >= memory:
            raise CircuitError(f"{where}: cell {value} is not defined yet (memory has {memory} cells)",
                               instruction=i)
        if name == "bits":
            lo, hi = _BITS_RANGE[op]
            if not lo <= value <= hi:
                raise CircuitError(f"{where}: bits={value} out of range {lo}..{hi}", instruction=i)
        args.append(value)
    if op == "pi_skip":
        count = args[1]
        assert count is not None
        if count > declared:
            raise CircuitError(f"instruction {i} (pi_skip): count {count} exceeds the {declared} public inputs "
                               "declared so far", instruction=i)
    if op == "persistent_hash":
        _check_persistent_hash(args[0], args[1], i)
    return cast(Instruction, RECORDS[op](*args)), memory + OUTPUTS[op]


def _check_persistent_hash(alignment: Any, inputs: Any, i: int) -> None:
    """Midnight cannot synthesize a decode with too few cells (cells beyond the alignment are ignored, as there)."""
    need, size = field_len(alignment), bin_len(alignment)
    if need > len(inputs):
        raise CircuitError(f"instruction {i} (persistent_hash): the alignment reads {need} cells, "
                           f"{len(inputs)} given", instruction=i)
    if size > MAX_PERSISTENT_HASH_BYTES:
        raise CircuitError(f"instruction {i} (persistent_hash): hashes {size} bytes, the limit is "
                           f"{MAX_PERSISTENT_HASH_BYTES}", instruction=i)


def circuit_from_obj(obj: Any) -> Circuit:
    """Validate a decoded JSON/CBOR value as a ZKIR v2 circuit."""
    top = _codec.expect_map(obj, "ZKIR", ("version", "num_inputs", "do_communications_commitment",
                                          "instructions"))
    version = _codec.expect_map(top["version"], "ZKIR version", ("major", "minor"))
    major, minor = version["major"], version["minor"]
    if major != 2 or isinstance(major, bool) or isinstance(minor, bool) or minor not in (0, 1):
        raise MalformedEncoding(f"unsupported ZKIR version {str(major)[:10]}.{str(minor)[:10]} (expected 2.0 or 2.1)")
    num_inputs = top["num_inputs"]
    if isinstance(num_inputs, bool) or not isinstance(num_inputs, int) or num_inputs < 0:
        raise MalformedEncoding("ZKIR num_inputs must be a non-negative integer")
    if num_inputs > MAX_NUM_INPUTS:
        raise CircuitError(f"ZKIR num_inputs {num_inputs} exceeds the limit {MAX_NUM_INPUTS}")
    dcc = top["do_communications_commitment"]
    if not isinstance(dcc, bool):
        raise MalformedEncoding("ZKIR do_communications_commitment must be a boolean")
    raw_instructions = top["instructions"]
    if not isinstance(raw_instructions, list):
        raise MalformedEncoding("ZKIR instructions must be a list")
    if len(raw_instructions) > MAX_INSTRUCTIONS:
        raise CircuitError(f"ZKIR has {len(raw_instructions)} instructions, the limit is {MAX_INSTRUCTIONS}")
    memory = num_inputs
    declared = 0
    instructions = []
    for i, raw in enumerate(raw_instructions):
        ins, memory = _parse_instruction(raw, i, memory, declared)
        if ins.op == "declare_pub_input":
            declared += 1
        instructions.append(ins)
    return Circuit(num_inputs, dcc, tuple(instructions), minor)


def load_circuit(data: bytes, *, max_bytes: int = MAX_CIRCUIT_BYTES) -> Circuit:
    """Parse a ZKIR v2 circuit from JSON or CBOR bytes (auto-detected)."""
    _codec.check_size(data, max_bytes, "ZKIR")
    if _codec.looks_like_json(data):
        obj = _codec.json_loads(data, "ZKIR")
    else:
        obj = _codec.cbor_loads(data, "ZKIR")
        if isinstance(obj, cbor2.CBORTag):
            if obj.tag != TAG_ZKIR_V2:
                raise MalformedEncoding(f"ZKIR: unexpected CBOR tag {obj.tag:#x} (expected {TAG_ZKIR_V2:#x})")
            obj = obj.value
    return circuit_from_obj(obj)
