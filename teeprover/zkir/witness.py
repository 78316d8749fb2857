"""Witness generation: run the ZKIR instructions on a preimage (Midnight's ``preprocess``).

The run follows Midnight's IR VM: memory starts as the preimage's inputs,
each instruction appends its outputs, ``public_input`` / ``private_input``
read the next public transcript output / private transcript entry when their
guard is 1 (or absent) and yield 0 otherwise, ``declare_pub_input`` appends a
public input, and ``pi_skip`` either checks the group's public inputs against
``public_transcript_inputs`` (guard 1 or absent) or skips them (guard 0).
All transcripts must be consumed exactly.

Alongside the memory it produces the auxiliary variables that
:mod:`teeprover.zkir.compile` allocated, in the same order, giving the full
R1CS assignment ``z``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from teeprover.errors import CircuitError
from teeprover.r1cs import R
from teeprover.zkir.compile import CompiledCircuit, require_supported
from teeprover.zkir.gadgets import bits as bitsg
from teeprover.zkir.gadgets import compare
from teeprover.zkir.gadgets.lc import WitnessBuilder
from teeprover.zkir.ir import FR_BITS, OUTPUTS, Circuit
from teeprover.zkir.preimage import ProofPreimage


class _Fail(Exception):
    """A failed check inside one instruction; turned into a CircuitError naming the instruction."""


@dataclass
class Trace:
    memory: list[int]
    public_inputs: list[int]
    aux: list[int]
    outputs: list[int]
    # One entry per pi_skip executed so far: the number of public inputs it skipped (0 when checked).
    pi_skips: list[int] = field(default_factory=list)


def _bool(v: int) -> int:
    if v not in (0, 1):
        raise _Fail(f"expected a boolean, found {v}")
    return v


def _fits(v: int, n: int) -> int:
    if v >> n:
        raise _Fail(f"bit bound failed: {v} is not {n}-bit")
    return v


def run(circuit: Circuit, preimage: ProofPreimage, compiled: CompiledCircuit | None = None,
        trace: Trace | None = None) -> Trace:
    """Execute ``circuit`` on ``preimage``; raise :class:`CircuitError` naming the failing instruction.

    With ``compiled`` the auxiliary R1CS values are produced too.  A caller that
    passes its own ``trace`` keeps the pi_skip results gathered before a failure.
    """
    require_supported(circuit)
    if len(preimage.inputs) != circuit.num_inputs:
        raise CircuitError(f"expected {circuit.num_inputs} inputs, received {len(preimage.inputs)}")
    memory = list(preimage.inputs)
    pis = [preimage.binding_input]
    if trace is None:
        trace = Trace(memory, pis, [], [])
    else:
        trace.memory, trace.public_inputs = memory, pis
    w = WitnessBuilder()
    trace.aux = w.values
    outputs = trace.outputs
    pi_skips = trace.pi_skips
    materialized = compiled.materialized if compiled is not None else frozenset()
    linear_muls = compiled.linear_muls if compiled is not None else frozenset()
    full = compiled is not None
    pti = preimage.public_transcript_inputs
    pto = preimage.public_transcript_outputs
    priv = preimage.private_transcript
    pti_idx = pto_idx = priv_idx = 0

    i = -1
    op = ""
    try:
        for i, ins in enumerate(circuit.instructions):
            op = ins.op
            args = ins.args
            if op == "add":
                memory.append((memory[args[0]] + memory[args[1]]) % R)  # type: ignore[index]
            elif op == "mul":
                v = memory[args[0]] * memory[args[1]] % R  # type: ignore[index]
                if full and i not in linear_muls:
                    w.push(v)
                memory.append(v)
            elif op == "neg":
                memory.append(-memory[args[0]] % R)  # type: ignore[index]
            elif op == "copy":
                memory.append(memory[args[0]])  # type: ignore[index]
            elif op == "load_imm":
                memory.append(args[0])  # type: ignore[arg-type]
            elif op == "not":
                memory.append(1 - _bool(memory[args[0]]))  # type: ignore[index]
            elif op == "assert":
                if not _bool(memory[args[0]]):  # type: ignore[index]
                    raise _Fail("failed direct assertion")
            elif op == "constrain_eq":
                a, b = memory[args[0]], memory[args[1]]  # type: ignore[index]
                if a != b:
                    raise _Fail(f"failed equality constraint: {a} != {b}")
            elif op == "constrain_to_boolean":
                _bool(memory[args[0]])  # type: ignore[index]
            elif op == "constrain_bits":
                n: int = args[1]  # type: ignore[assignment]
                bitsg.decompose_witness(w, _fits(memory[args[0]], n), n)  # type: ignore[index]
            elif op == "cond_select":
                bit = _bool(memory[args[0]])  # type: ignore[index]
                v = memory[args[1]] if bit else memory[args[2]]  # type: ignore[index]
                w.push(v)
                memory.append(v)
            elif op == "test_eq":
                memory.append(compare.is_zero_witness(w, memory[args[0]] - memory[args[1]]))  # type: ignore[index]
            elif op == "less_than":
                n = args[2]  # type: ignore[assignment]
                a = _fits(memory[args[0]], n)  # type: ignore[index]
                b = _fits(memory[args[1]], n)  # type: ignore[index]
                memory.append(compare.less_than_witness(w, a, b, n))
            elif op == "div_mod_power_of_two":
                n = args[1]  # type: ignore[assignment]
                x = memory[args[0]]  # type: ignore[index]
                bits = bitsg.decompose_witness(w, x, FR_BITS)
                bitsg.canonical_witness(w, bits)
                memory.append(x >> n)
                memory.append(x & ((1 << n) - 1))
            elif op == "reconstitute_field":
                n = args[2]  # type: ignore[assignment]
                modulus = _fits(memory[args[1]], n)  # type: ignore[index]
                divisor = _fits(memory[args[0]], FR_BITS - n)  # type: ignore[index]
                total = (divisor << n) | modulus
                if total >= R:
                    raise _Fail("reconstituted element overflows the field")
                mod_bits = bitsg.decompose_witness(w, modulus, n)
                div_bits = bitsg.decompose_witness(w, divisor, FR_BITS - n)
                bitsg.canonical_witness(w, mod_bits + div_bits)
                memory.append(total)
            elif op in ("public_input", "private_input"):
                # A guarded read from the public transcript outputs or the private transcript; 0 when off.
                guard = args[0]
                if guard is not None and not _bool(memory[guard]):
                    v = 0
                elif op == "public_input":
                    v = _next(pto, pto_idx, "public transcript outputs")
                    pto_idx += 1
                else:
                    v = _next(priv, priv_idx, "private transcript outputs")
                    priv_idx += 1
                w.push(v)
                memory.append(v)
            elif op == "declare_pub_input":
                pis.append(memory[args[0]])  # type: ignore[index]
                pti_idx += 1
            elif op == "pi_skip":
                guard, count = args
                assert count is not None
                if count > pti_idx:
                    raise _Fail(f"skips {count} public inputs but only {pti_idx} are pending")
                if guard is not None and not _bool(memory[guard]):
                    pti_idx -= count
                    pi_skips.append(count)
                else:
                    for j in range(count):
                        t = pti_idx - count + j
                        expected = pti[t] if t < len(pti) else None
                        computed = pis[len(pis) - count + j]
                        if expected != computed:
                            raise _Fail(f"public transcript input mismatch for input {t}; "
                                        f"expected: {expected}, computed: {computed}")
                    pi_skips.append(0)
            elif op == "output":
                outputs.append(memory[args[0]])  # type: ignore[index]
            else:  # pragma: no cover - ir.py admits only the ops above
                raise _Fail("unsupported instruction")
            if full:
                base = len(memory) - OUTPUTS[op]
                for cell in range(base, len(memory)):
                    if cell in materialized:
                        w.push(memory[cell])
    except _Fail as exc:
        raise CircuitError(f"instruction {i} ({op}): {exc}", instruction=i, details={"op": op}) from None
    if (pti_idx, pto_idx, priv_idx) != (len(pti), len(pto), len(priv)):
        raise CircuitError(
            "transcripts not fully consumed: used "
            f"{pti_idx}/{len(pti)} public transcript inputs, {pto_idx}/{len(pto)} public transcript outputs, "
            f"{priv_idx}/{len(priv)} private transcript entries")
    return trace


def _next(transcript: Sequence[int], index: int, what: str) -> int:
    if index >= len(transcript):
        raise _Fail(f"ran out of {what}")
    return transcript[index]


def generate_witness(compiled: CompiledCircuit, preimage: ProofPreimage, *,
                     verify: bool = True) -> tuple[list[int], list[int]]:
    """The full assignment ``z`` (``z[0] = 1``) and the proof's public inputs ``z[1 : 1 + num_public]``.

    Raises :class:`CircuitError` naming the failing instruction.  With ``verify``
    (default) the assignment is also checked against every R1CS constraint, so a
    proof is never attempted on a witness that does not satisfy the circuit.
    """
    trace = run(compiled.circuit, preimage, compiled)
    z = [1, *trace.public_inputs, *preimage.inputs, *trace.aux]
    if len(z) != compiled.r1cs.num_variables:  # pragma: no cover - compile/witness out of step is a bug
        raise AssertionError(f"witness has {len(z)} values, the R1CS has {compiled.r1cs.num_variables}")
    if verify:
        compiled.r1cs.check_witness(z)
    return z, list(trace.public_inputs)
