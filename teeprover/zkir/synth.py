"""The one ZKIR synthesizer: every op is one function, run for the R1CS and for the witness alike.

:func:`synthesize` walks a circuit's instructions through the op table
:data:`OPS` on a :class:`~teeprover.zkir.gadgets.lc.Synth`.  In setup mode
(no preimage) it yields the constraints; in prove mode (with a preimage) it
runs Midnight's IR VM ``preprocess`` and assigns every variable.  Because the
same function allocates the same variables in both modes, the compiled R1CS
and the witness cannot drift apart (``docs/zkir.md``).

The prove-mode run follows Midnight's VM: memory starts as the preimage's
inputs, each instruction appends its outputs, ``public_input`` /
``private_input`` read the next public transcript output / private transcript
entry when their guard is 1 (or absent) and yield 0 otherwise,
``declare_pub_input`` appends a public input, and ``pi_skip`` either checks the
group's public inputs against ``public_transcript_inputs`` (guard 1 or absent)
or skips them (guard 0).  All transcripts must be consumed exactly.

Variable layout (see :mod:`teeprover.r1cs`): ``0`` the constant one; ``1`` the
binding input; ``2`` the communications commitment when enabled; then one
public variable per ``declare_pub_input`` in program order; then the private
variables: the circuit inputs (memory cells ``0..num_inputs-1``) followed by
the variables each instruction allocates, in program order.

A memory cell is a linear combination (LC) of variables, so ``add``, ``neg``,
``copy``, ``load_imm``, ``not`` and ``reconstitute_field``'s output cost no
variable of their own.  An LC that grows beyond :data:`MAX_LC_TERMS` terms is
stored in a fresh variable (one constraint), which keeps every step O(1) in
the size of the program: synthesis is linear.

Every constraint is labelled ``"instruction i (op)"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from teeprover.errors import CircuitError
from teeprover.r1cs import R
from teeprover.zkir import instructions as I  # the records read as I.Add, I.EcMul
from teeprover.zkir.alignment import AlignmentMismatch
from teeprover.zkir.gadgets import bits as bitsg
from teeprover.zkir.gadgets import compare, fab, hash_to_curve, jubjub, lc, poseidon
from teeprover.zkir.gadgets.lc import LC, Synth, WitnessError
from teeprover.zkir.ir import FR_BITS, Circuit
from teeprover.zkir.preimage import ProofPreimage

MAX_LC_TERMS = 16


@dataclass
class Machine:
    """The state of one run: the constraint system, the memory cells and (prove mode) the transcripts."""

    s: Synth
    circuit: Circuit
    preimage: ProofPreimage | None
    memory: list[LC]
    # The cells named by ``output`` instructions, in order.
    outputs: list[LC] = field(default_factory=list)
    next_pub: int = 0
    # One entry per pi_skip executed so far: the number of public inputs it skipped (0 when checked).
    pi_skips: list[int] = field(default_factory=list)
    pti_idx: int = 0
    pto_idx: int = 0
    priv_idx: int = 0

    @property
    def proving(self) -> bool:
        return self.s.proving

    @property
    def inputs(self) -> list[LC]:
        """The input cells, in order (the communications commitment hashes them): memory never shrinks."""
        return self.memory[:self.circuit.num_inputs]

    def cell(self, i: int | None) -> LC:
        assert i is not None
        return self.memory[i]

    def val(self, i: int | None) -> int:
        """The value of memory cell ``i`` (prove mode only)."""
        return self.s.value(self.cell(i))

    def bool_val(self, i: int | None) -> int:
        v = self.val(i)
        if v not in (0, 1):
            self.s.fail(f"expected a boolean, found {v}")
        return v

    def fits(self, i: int | None, n: int) -> int:
        v = self.val(i)
        if v >> n:
            self.s.fail(f"bit bound failed: {v} is not {n}-bit")
        return v

    def read(self, transcript: Sequence[int], index: int, what: str) -> int:
        if index >= len(transcript):
            self.s.fail(f"ran out of {what}")
        return transcript[index]


# Each op function takes its own record type (teeprover.zkir.instructions); the table dispatches by name.
OpFn = Callable[[Machine, Any], list[LC]]


def _new(m: Machine, value: Callable[[], int]) -> LC:
    return lc.var(m.s.new_var(value))


# ---------------------------------------------------------------- arithmetic and logic

def _add(m: Machine, ins: I.Add) -> list[LC]:
    return [lc.add(m.cell(ins.a), m.cell(ins.b))]


def _mul(m: Machine, ins: I.Mul) -> list[LC]:
    a, b = m.cell(ins.a), m.cell(ins.b)
    ca, cb = lc.constant_value(a), lc.constant_value(b)
    if ca is not None:  # a constant operand is a linear scaling: no variable
        return [lc.scale(b, ca)]
    if cb is not None:
        return [lc.scale(a, cb)]
    out = _new(m, lambda: m.s.value(a) * m.s.value(b))
    m.s.enforce(a, b, out)
    return [out]


def _neg(m: Machine, ins: I.Neg) -> list[LC]:
    return [lc.scale(m.cell(ins.a), -1)]


def _copy(m: Machine, ins: I.Copy) -> list[LC]:
    return [m.cell(ins.var)]


def _load_imm(m: Machine, ins: I.LoadImm) -> list[LC]:
    return [lc.const(ins.imm)]


def _not(m: Machine, ins: I.Not) -> list[LC]:
    a = m.cell(ins.a)
    if m.proving:
        m.bool_val(ins.a)
    m.s.enforce_boolean(a)
    return [lc.sub(lc.ONE, a)]


def _assert(m: Machine, ins: I.Assert) -> list[LC]:
    if m.proving and not m.bool_val(ins.cond):
        m.s.fail("failed direct assertion")
    m.s.enforce(m.cell(ins.cond), lc.ONE, lc.ONE)
    return []


def _constrain_eq(m: Machine, ins: I.ConstrainEq) -> list[LC]:
    if m.proving:
        a, b = m.val(ins.a), m.val(ins.b)
        if a != b:
            m.s.fail(f"failed equality constraint: {a} != {b}")
    m.s.enforce_equal(m.cell(ins.a), m.cell(ins.b))
    return []


def _constrain_to_boolean(m: Machine, ins: I.ConstrainToBoolean) -> list[LC]:
    if m.proving:
        m.bool_val(ins.var)
    m.s.enforce_boolean(m.cell(ins.var))
    return []


def _constrain_bits(m: Machine, ins: I.ConstrainBits) -> list[LC]:
    if m.proving:
        m.fits(ins.var, ins.bits)
    bitsg.decompose(m.s, m.cell(ins.var), ins.bits)
    return []


def _cond_select(m: Machine, ins: I.CondSelect) -> list[LC]:
    bit, a, b = m.cell(ins.bit), m.cell(ins.a), m.cell(ins.b)
    if m.proving:
        m.bool_val(ins.bit)
    m.s.enforce_boolean(bit)
    out = _new(m, lambda: m.s.value(a) if m.s.value(bit) else m.s.value(b))
    m.s.enforce(bit, lc.sub(a, b), lc.sub(out, b))
    return [out]


def _test_eq(m: Machine, ins: I.TestEq) -> list[LC]:
    return [lc.var(compare.is_zero(m.s, lc.sub(m.cell(ins.a), m.cell(ins.b))))]


def _less_than(m: Machine, ins: I.LessThan) -> list[LC]:
    if m.proving:
        m.fits(ins.a, ins.bits)
        m.fits(ins.b, ins.bits)
    return [compare.less_than(m.s, m.cell(ins.a), m.cell(ins.b), ins.bits)]


def _div_mod_power_of_two(m: Machine, ins: I.DivModPowerOfTwo) -> list[LC]:
    n = ins.bits
    bits = bitsg.decompose(m.s, m.cell(ins.var), FR_BITS)
    bitsg.canonical(m.s, bits)
    return [lc.weighted_sum(bits[n:]), lc.weighted_sum(bits[:n])]


def _reconstitute_field(m: Machine, ins: I.ReconstituteField) -> list[LC]:
    divisor, modulus = m.cell(ins.divisor), m.cell(ins.modulus)
    n = ins.bits
    if m.proving:
        mod_v = m.fits(ins.modulus, n)
        div_v = m.fits(ins.divisor, FR_BITS - n)
        if (div_v << n) | mod_v >= R:
            m.s.fail("reconstituted element overflows the field")
    mod_bits = bitsg.decompose(m.s, modulus, n)
    div_bits = bitsg.decompose(m.s, divisor, FR_BITS - n)
    bitsg.canonical(m.s, mod_bits + div_bits)
    return [lc.add(lc.scale(divisor, 1 << n), modulus)]


# ---------------------------------------------------------------- transcripts and public inputs

def _transcript_input(m: Machine, ins: I.PublicInput | I.PrivateInput) -> list[LC]:
    """A guarded read from the public transcript outputs or the private transcript; 0 when the guard is 0."""
    guard = ins.guard

    def value() -> int:
        assert m.preimage is not None
        if guard is not None and not m.bool_val(guard):
            return 0
        if ins.op == "public_input":
            m.pto_idx += 1
            return m.read(m.preimage.public_transcript_outputs, m.pto_idx - 1, "public transcript outputs")
        m.priv_idx += 1
        return m.read(m.preimage.private_transcript, m.priv_idx - 1, "private transcript outputs")

    v = m.s.new_var(value)
    if guard is not None:
        g = m.cell(guard)
        m.s.enforce_boolean(g)
        m.s.enforce(lc.sub(lc.ONE, g), {v: 1}, {})
    return [lc.var(v)]


def _declare_pub_input(m: Machine, ins: I.DeclarePubInput) -> list[LC]:
    x = m.cell(ins.var)
    m.s.enforce(x, lc.ONE, {m.next_pub: 1})
    if m.proving:
        m.s.set_public(m.next_pub, m.s.value(x))
    m.next_pub += 1
    m.pti_idx += 1
    return []


def _pi_skip(m: Machine, ins: I.PiSkip) -> list[LC]:
    if not m.proving:
        return []
    assert m.preimage is not None
    guard, count = ins.guard, ins.count
    if count > m.pti_idx:
        m.s.fail(f"skips {count} public inputs but only {m.pti_idx} are pending")
    if guard is not None and not m.bool_val(guard):
        m.pti_idx -= count
        m.pi_skips.append(count)
        return []
    pti = m.preimage.public_transcript_inputs
    for j in range(count):
        t = m.pti_idx - count + j
        expected = pti[t] if t < len(pti) else None
        computed = m.s.z[m.next_pub - count + j]
        if expected != computed:
            m.s.fail(f"public transcript input mismatch for input {t}; expected: {expected}, computed: {computed}")
    m.pi_skips.append(0)
    return []


def _output(m: Machine, ins: I.Output) -> list[LC]:
    m.outputs.append(m.cell(ins.var))  # feeds the communications commitment
    return []


# ---------------------------------------------------------------- hashes

def _transient_hash(m: Machine, ins: I.TransientHash) -> list[LC]:
    return [poseidon.hash_lc(m.s, [m.cell(j) for j in ins.inputs])]


def _persistent_hash(m: Machine, ins: I.PersistentHash) -> list[LC]:
    alignment, inputs = ins.alignment, ins.inputs
    if m.proving:
        try:
            fab.persistent_hash(alignment, [m.val(j) for j in inputs])
        except AlignmentMismatch as exc:
            m.s.fail(f"inputs did not match the alignment: {exc}")
    return fab.persistent_hash_gadget(m.s, alignment, [m.cell(j) for j in inputs])


# ---------------------------------------------------------------- Jubjub (docs/zkir.md)

def _point(m: Machine, ix: int | None, iy: int | None) -> jubjub.PointLC:
    """An input point; prove mode refuses it, like Midnight's VM, unless it is on the curve and in the subgroup."""
    if m.proving:
        error = jubjub.point_error((m.val(ix), m.val(iy)))
        if error is not None:
            m.s.fail(error)
    return m.cell(ix), m.cell(iy)


def _ec_add(m: Machine, ins: I.EcAdd) -> list[LC]:
    return list(jubjub.gadget_add(m.s, _point(m, ins.a_x, ins.a_y), _point(m, ins.b_x, ins.b_y)))


def _ec_mul(m: Machine, ins: I.EcMul) -> list[LC]:
    return list(jubjub.gadget_mul(m.s, _point(m, ins.a_x, ins.a_y), m.cell(ins.scalar)))


def _ec_mul_generator(m: Machine, ins: I.EcMulGenerator) -> list[LC]:
    return list(jubjub.gadget_mul_generator(m.s, m.cell(ins.scalar)))


def _hash_to_curve(m: Machine, ins: I.HashToCurve) -> list[LC]:
    return list(hash_to_curve.gadget_hash_to_curve(m.s, [m.cell(j) for j in ins.inputs]))


OPS: dict[str, OpFn] = {
    "add": _add,
    "mul": _mul,
    "neg": _neg,
    "copy": _copy,
    "load_imm": _load_imm,
    "not": _not,
    "assert": _assert,
    "constrain_eq": _constrain_eq,
    "constrain_to_boolean": _constrain_to_boolean,
    "constrain_bits": _constrain_bits,
    "cond_select": _cond_select,
    "test_eq": _test_eq,
    "less_than": _less_than,
    "div_mod_power_of_two": _div_mod_power_of_two,
    "reconstitute_field": _reconstitute_field,
    "public_input": _transcript_input,
    "private_input": _transcript_input,
    "declare_pub_input": _declare_pub_input,
    "pi_skip": _pi_skip,
    "output": _output,
    "transient_hash": _transient_hash,
    "persistent_hash": _persistent_hash,
    "ec_add": _ec_add,
    "ec_mul": _ec_mul,
    "ec_mul_generator": _ec_mul_generator,
    "hash_to_curve": _hash_to_curve,
}


def _start_commitment(m: Machine) -> None:
    """Prove mode: public input #1 is the preimage's commitment; like Midnight, fail before running without one."""
    if m.circuit.do_communications_commitment and m.preimage is not None:
        if m.preimage.communications_commitment is None:
            raise CircuitError("Expected communications commitment")
        m.s.set_public(2, m.preimage.communications_commitment[0])


def _finish_commitment(m: Machine) -> None:
    """Constrain public input #1 to ``transient_hash([randomness, *inputs, *outputs])`` (Midnight's transient_commit).

    The randomness is a private variable; prove mode first checks the preimage's pair as
    Midnight's ``preprocess`` does (``outputs`` are the ``output`` cells in program order).
    """
    if not m.circuit.do_communications_commitment:
        return
    s = m.s
    randomness = None
    if m.preimage is not None:
        assert m.preimage.communications_commitment is not None  # _start_commitment refused its absence
        commitment, randomness = m.preimage.communications_commitment
        values = [s.value(x) for x in (*m.inputs, *m.outputs)]
        if poseidon.transient_commit(values, randomness) != commitment:
            s.fail("Communications commitment mismatch")
    opening = lc.var(s.new_var(randomness))
    s.enforce_equal(poseidon.hash_lc(s, [opening, *m.inputs, *m.outputs]), lc.var(2))


def synthesize(circuit: Circuit, preimage: ProofPreimage | None = None, *,
               max_constraints: int | None = None, pi_skips: list[int] | None = None) -> Machine:
    """Run every instruction: setup mode without ``preimage`` (constraints), prove mode with it (values).

    Prove mode raises :class:`CircuitError` naming the failing instruction when the
    preimage does not satisfy the circuit; a caller that passes its own ``pi_skips``
    list keeps the pi_skip results gathered before a failure.
    """
    proving = preimage is not None
    num_public = circuit.num_public_inputs
    s = Synth(num_public, proving=proving, max_constraints=max_constraints)
    if preimage is not None:
        if len(preimage.inputs) != circuit.num_inputs:
            raise CircuitError(f"expected {circuit.num_inputs} inputs, received {len(preimage.inputs)}")
        s.set_public(1, preimage.binding_input)
        inputs = [lc.var(s.new_var(x)) for x in preimage.inputs]
    else:
        inputs = [lc.var(s.new_var()) for _ in range(circuit.num_inputs)]
    m = Machine(s, circuit, preimage, inputs,
                next_pub=2 + int(circuit.do_communications_commitment))
    if pi_skips is not None:
        m.pi_skips = pi_skips
    _start_commitment(m)
    i, op = -1, ""
    try:
        for i, ins in enumerate(circuit.instructions):
            op = ins.op
            s.label = f"instruction {i} ({op})"
            for cell in OPS[op](m, ins):
                if len(cell) > MAX_LC_TERMS:
                    v = s.new_var(s.value(cell) if proving else None)
                    s.enforce(cell, lc.ONE, {v: 1})
                    cell = {v: 1}
                m.memory.append(cell)
        i, op = -1, ""
        if preimage is not None:
            consumed = (m.pti_idx, m.pto_idx, m.priv_idx)
            lengths = (len(preimage.public_transcript_inputs), len(preimage.public_transcript_outputs),
                       len(preimage.private_transcript))
            if consumed != lengths:
                raise CircuitError(
                    "transcripts not fully consumed: used "
                    f"{m.pti_idx}/{lengths[0]} public transcript inputs, {m.pto_idx}/{lengths[1]} public transcript "
                    f"outputs, {m.priv_idx}/{lengths[2]} private transcript entries")
        s.label = "communications commitment"
        _finish_commitment(m)
    except WitnessError as exc:
        if i < 0:
            raise CircuitError(str(exc)) from None
        raise CircuitError(f"instruction {i} ({op}): {exc}", instruction=i, details={"op": op}) from None
    assert m.next_pub == num_public + 1
    return m
