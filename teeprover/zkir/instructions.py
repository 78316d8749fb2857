"""The ZKIR v2 instructions: one typed record per op, in the order of Midnight's struct fields.

Each record names its op (``op``), the memory cells it appends (``outputs``)
and its operands; every operand field says its kind in its metadata, which is
what the parser in :mod:`teeprover.zkir.ir` checks:

- ``idx``: a memory cell (``int``); ``guard``: an optional cell (``int | None``);
- ``idxs``: a list of cells (``tuple[int, ...]``);
- ``u32``: a count; ``imm``: a field element in ``0..r-1``;
- ``alignment``: Midnight's alignment of hashed cells (:mod:`teeprover.zkir.alignment`).

This module is the one list of ops: the parser's operand specs and the output
counts are derived from it, and :data:`teeprover.zkir.synth.OPS` must name
every record (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from teeprover.zkir.alignment import Alignment, alignment_to_json


def _kind(kind: str) -> Any:
    return field(metadata={"kind": kind})


@dataclass(frozen=True, slots=True)
class Op:
    """Base of the records: the JSON form and the operands by position or name."""

    op: ClassVar[str]
    outputs: ClassVar[int]

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    def operand(self, name: str) -> Any:
        return getattr(self, name)

    def to_json(self) -> dict[str, Any]:
        from teeprover.zkir.ir import format_immediate

        out: dict[str, Any] = {"op": self.op}
        for f in fields(self):
            value = getattr(self, f.name)
            kind = f.metadata["kind"]
            if kind == "imm":
                out[f.name] = format_immediate(value)
            elif kind == "idxs":
                out[f.name] = list(value)
            elif kind == "alignment":
                out[f.name] = alignment_to_json(value)
            else:
                out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class Assert(Op):
    op: ClassVar[str] = "assert"
    outputs: ClassVar[int] = 0
    cond: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class CondSelect(Op):
    op: ClassVar[str] = "cond_select"
    outputs: ClassVar[int] = 1
    bit: int = _kind("idx")
    a: int = _kind("idx")
    b: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class ConstrainBits(Op):
    op: ClassVar[str] = "constrain_bits"
    outputs: ClassVar[int] = 0
    var: int = _kind("idx")
    bits: int = _kind("u32")


@dataclass(frozen=True, slots=True)
class ConstrainEq(Op):
    op: ClassVar[str] = "constrain_eq"
    outputs: ClassVar[int] = 0
    a: int = _kind("idx")
    b: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class ConstrainToBoolean(Op):
    op: ClassVar[str] = "constrain_to_boolean"
    outputs: ClassVar[int] = 0
    var: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class Copy(Op):
    op: ClassVar[str] = "copy"
    outputs: ClassVar[int] = 1
    var: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class DeclarePubInput(Op):
    op: ClassVar[str] = "declare_pub_input"
    outputs: ClassVar[int] = 0
    var: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class PiSkip(Op):
    op: ClassVar[str] = "pi_skip"
    outputs: ClassVar[int] = 0
    guard: int | None = _kind("guard")
    count: int = _kind("u32")


@dataclass(frozen=True, slots=True)
class LoadImm(Op):
    op: ClassVar[str] = "load_imm"
    outputs: ClassVar[int] = 1
    imm: int = _kind("imm")


@dataclass(frozen=True, slots=True)
class DivModPowerOfTwo(Op):
    op: ClassVar[str] = "div_mod_power_of_two"
    outputs: ClassVar[int] = 2
    var: int = _kind("idx")
    bits: int = _kind("u32")


@dataclass(frozen=True, slots=True)
class ReconstituteField(Op):
    op: ClassVar[str] = "reconstitute_field"
    outputs: ClassVar[int] = 1
    divisor: int = _kind("idx")
    modulus: int = _kind("idx")
    bits: int = _kind("u32")


@dataclass(frozen=True, slots=True)
class Output(Op):
    op: ClassVar[str] = "output"
    outputs: ClassVar[int] = 0
    var: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class TestEq(Op):
    __test__: ClassVar[bool] = False  # not a pytest test class
    op: ClassVar[str] = "test_eq"
    outputs: ClassVar[int] = 1
    a: int = _kind("idx")
    b: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class Add(Op):
    op: ClassVar[str] = "add"
    outputs: ClassVar[int] = 1
    a: int = _kind("idx")
    b: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class Mul(Op):
    op: ClassVar[str] = "mul"
    outputs: ClassVar[int] = 1
    a: int = _kind("idx")
    b: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class Neg(Op):
    op: ClassVar[str] = "neg"
    outputs: ClassVar[int] = 1
    a: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class Not(Op):
    op: ClassVar[str] = "not"
    outputs: ClassVar[int] = 1
    a: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class LessThan(Op):
    op: ClassVar[str] = "less_than"
    outputs: ClassVar[int] = 1
    a: int = _kind("idx")
    b: int = _kind("idx")
    bits: int = _kind("u32")


@dataclass(frozen=True, slots=True)
class PublicInput(Op):
    op: ClassVar[str] = "public_input"
    outputs: ClassVar[int] = 1
    guard: int | None = _kind("guard")


@dataclass(frozen=True, slots=True)
class PrivateInput(Op):
    op: ClassVar[str] = "private_input"
    outputs: ClassVar[int] = 1
    guard: int | None = _kind("guard")


@dataclass(frozen=True, slots=True)
class PersistentHash(Op):
    op: ClassVar[str] = "persistent_hash"
    outputs: ClassVar[int] = 2  # byte 31, then bytes 0..30 little-endian
    alignment: Alignment = _kind("alignment")
    inputs: tuple[int, ...] = _kind("idxs")


@dataclass(frozen=True, slots=True)
class TransientHash(Op):
    op: ClassVar[str] = "transient_hash"
    outputs: ClassVar[int] = 1
    inputs: tuple[int, ...] = _kind("idxs")


@dataclass(frozen=True, slots=True)
class EcAdd(Op):
    op: ClassVar[str] = "ec_add"
    outputs: ClassVar[int] = 2  # a point (x, y)
    a_x: int = _kind("idx")
    a_y: int = _kind("idx")
    b_x: int = _kind("idx")
    b_y: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class EcMul(Op):
    op: ClassVar[str] = "ec_mul"
    outputs: ClassVar[int] = 2
    a_x: int = _kind("idx")
    a_y: int = _kind("idx")
    scalar: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class EcMulGenerator(Op):
    op: ClassVar[str] = "ec_mul_generator"
    outputs: ClassVar[int] = 2
    scalar: int = _kind("idx")


@dataclass(frozen=True, slots=True)
class HashToCurve(Op):
    op: ClassVar[str] = "hash_to_curve"
    outputs: ClassVar[int] = 2
    inputs: tuple[int, ...] = _kind("idxs")


Instruction = (Assert | CondSelect | ConstrainBits | ConstrainEq | ConstrainToBoolean | Copy | DeclarePubInput
               | PiSkip | LoadImm | DivModPowerOfTwo | ReconstituteField | Output | TestEq | Add | Mul | Neg | Not
               | LessThan | PublicInput | PrivateInput | PersistentHash | TransientHash | EcAdd | EcMul
               | EcMulGenerator | HashToCurve)

RECORDS: dict[str, type[Op]] = {cls.op: cls for cls in (
    Assert, CondSelect, ConstrainBits, ConstrainEq, ConstrainToBoolean, Copy, DeclarePubInput, PiSkip, LoadImm,
    DivModPowerOfTwo, ReconstituteField, Output, TestEq, Add, Mul, Neg, Not, LessThan, PublicInput, PrivateInput,
    PersistentHash, TransientHash, EcAdd, EcMul, EcMulGenerator, HashToCurve)}
# The parser's view: (operand name, kind) per op, and the cells each op appends.
SPECS: dict[str, tuple[tuple[str, str], ...]] = {
    op: tuple((f.name, f.metadata["kind"]) for f in fields(cls)) for op, cls in RECORDS.items()}
OUTPUTS: dict[str, int] = {op: cls.outputs for op, cls in RECORDS.items()}
