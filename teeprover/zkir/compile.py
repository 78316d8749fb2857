"""ZKIR v2 → R1CS.

Variable layout (see :mod:`teeprover.r1cs`): ``0`` the constant one; ``1`` the
binding input; ``2`` the communications commitment when enabled; then one
public variable per ``declare_pub_input`` in program order; then the private
variables: the circuit inputs (memory cells ``0..num_inputs-1``) followed by
the auxiliary variables of each instruction in program order.

A memory cell is a linear combination (LC) of variables, so ``add``, ``neg``,
``copy``, ``load_imm``, ``not`` and ``reconstitute_field``'s output cost no
variable of their own.  An LC that grows beyond :data:`MAX_LC_TERMS` terms is
stored in a fresh variable (one constraint), which keeps every step O(1) in
the size of the program: compilation is linear.  Which cells were stored that
way is recorded in :attr:`CompiledCircuit.materialized`, so witness generation
allocates the same variables.

Every constraint is labelled ``"instruction i (op)"``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from teeprover.errors import CircuitTooLarge, UnsupportedInstruction
from teeprover.r1cs import R1CS
from teeprover.zkir.gadgets import bits as bitsg
from teeprover.zkir.gadgets import compare, lc
from teeprover.zkir.gadgets.lc import LC, ConstraintBuilder
from teeprover.zkir.ir import FR_BITS, Circuit

MIN_K = 10
MAX_K = 24
MAX_LC_TERMS = 16


@dataclass(frozen=True, eq=False)
class CompiledCircuit:
    circuit: Circuit
    r1cs: R1CS
    # Memory cells whose LC was stored in a fresh private variable, in order of allocation.
    materialized: frozenset[int]
    # Indices of ``mul`` instructions with a constant operand (compiled as a linear scaling, no variable).
    linear_muls: frozenset[int]
    k: int

    @property
    def num_public(self) -> int:
        return self.r1cs.num_public

    def digest(self) -> bytes:
        return self.circuit.digest()


def require_supported(circuit: Circuit) -> None:
    if circuit.do_communications_commitment:
        raise UnsupportedInstruction(
            "do_communications_commitment=true needs transient_commit (Poseidon) in-circuit, which this prover "
            "does not implement; refusing rather than leaving the commitment unconstrained",
            details={"op": "do_communications_commitment"})


def _compile(circuit: Circuit, max_k: int) -> CompiledCircuit:
    require_supported(circuit)
    num_public = circuit.num_public_inputs
    max_constraints = (1 << max_k) - num_public - 1
    if max_constraints < 0:
        raise CircuitTooLarge(f"{num_public} public inputs do not fit in k={max_k}")
    first_pub = 1 + 1 + int(circuit.do_communications_commitment)
    cs = ConstraintBuilder(num_public + 1, max_constraints)
    memory: list[LC] = [lc.var(cs.new_var()) for _ in range(circuit.num_inputs)]
    materialized: list[int] = []
    linear_muls: list[int] = []
    next_pub = first_pub

    for i, ins in enumerate(circuit.instructions):
        op = ins.op
        cs.label = f"instruction {i} ({op})"
        args = ins.args
        out: list[LC] = []
        if op == "add":
            out.append(lc.add(memory[args[0]], memory[args[1]]))  # type: ignore[index]
        elif op == "mul":
            a, b = memory[args[0]], memory[args[1]]  # type: ignore[index]
            ca, cb = lc.constant_value(a), lc.constant_value(b)
            if ca is not None or cb is not None:
                out.append(lc.scale(b, ca) if ca is not None else lc.scale(a, cb))  # type: ignore[arg-type]
                linear_muls.append(i)
            else:
                v = cs.new_var()
                cs.enforce(a, b, {v: 1})
                out.append({v: 1})
        elif op == "neg":
            out.append(lc.scale(memory[args[0]], -1))  # type: ignore[index]
        elif op == "copy":
            out.append(memory[args[0]])  # type: ignore[index]
        elif op == "load_imm":
            out.append(lc.const(args[0]))  # type: ignore[arg-type]
        elif op == "not":
            a = memory[args[0]]  # type: ignore[index]
            cs.enforce_boolean(a)
            out.append(lc.sub(lc.ONE, a))
        elif op == "assert":
            cs.enforce(memory[args[0]], lc.ONE, lc.ONE)  # type: ignore[index]
        elif op == "constrain_eq":
            cs.enforce_equal(memory[args[0]], memory[args[1]])  # type: ignore[index]
        elif op == "constrain_to_boolean":
            cs.enforce_boolean(memory[args[0]])  # type: ignore[index]
        elif op == "constrain_bits":
            bitsg.decompose_constraints(cs, memory[args[0]], args[1])  # type: ignore[index, arg-type]
        elif op == "cond_select":
            bit, a, b = (memory[j] for j in args)  # type: ignore[index]
            cs.enforce_boolean(bit)
            v = cs.new_var()
            cs.enforce(bit, lc.sub(a, b), lc.sub({v: 1}, b))
            out.append({v: 1})
        elif op == "test_eq":
            d = lc.sub(memory[args[0]], memory[args[1]])  # type: ignore[index]
            out.append({compare.is_zero_constraints(cs, d): 1})
        elif op == "less_than":
            a, b = memory[args[0]], memory[args[1]]  # type: ignore[index]
            out.append(compare.less_than_constraints(cs, a, b, args[2]))  # type: ignore[arg-type]
        elif op == "div_mod_power_of_two":
            n: int = args[1]  # type: ignore[assignment]
            bits = bitsg.decompose_constraints(cs, memory[args[0]], FR_BITS)  # type: ignore[index]
            bitsg.canonical_constraints(cs, bits)
            out.append(lc.weighted_sum(bits[n:]))
            out.append(lc.weighted_sum(bits[:n]))
        elif op == "reconstitute_field":
            divisor, modulus = memory[args[0]], memory[args[1]]  # type: ignore[index]
            n = args[2]  # type: ignore[assignment]
            mod_bits = bitsg.decompose_constraints(cs, modulus, n)
            div_bits = bitsg.decompose_constraints(cs, divisor, FR_BITS - n)
            bitsg.canonical_constraints(cs, mod_bits + div_bits)
            out.append(lc.add(lc.scale(divisor, 1 << n), modulus))
        elif op in ("public_input", "private_input"):
            v = cs.new_var()
            guard = args[0]
            if guard is not None:
                g = memory[guard]
                cs.enforce_boolean(g)
                cs.enforce(lc.sub(lc.ONE, g), {v: 1}, {})
            out.append({v: 1})
        elif op == "declare_pub_input":
            cs.enforce(memory[args[0]], lc.ONE, {next_pub: 1})  # type: ignore[index]
            next_pub += 1
        elif op in ("pi_skip", "output"):
            pass  # no constraints: pi_skip informs transcript checking, output feeds the (unsupported) commitment
        else:  # pragma: no cover - ir.py admits only the ops above
            raise UnsupportedInstruction(f"instruction {i} ({op}) is not supported", instruction=i)
        for cell in out:
            if len(cell) > MAX_LC_TERMS:
                v = cs.new_var()
                cs.enforce(cell, lc.ONE, {v: 1})
                materialized.append(len(memory))
                cell = {v: 1}
            memory.append(cell)

    assert next_pub == num_public + 1
    r1cs = R1CS(cs.next_var, num_public, tuple(cs.constraints), tuple(cs.labels))
    k = max(MIN_K, r1cs.k())
    if k > max_k:  # pragma: no cover - the builder stops first
        raise CircuitTooLarge(f"the circuit needs k={k}, the maximum is {max_k}")
    return CompiledCircuit(circuit, r1cs, frozenset(materialized), frozenset(linear_muls), k)


# A few compiled circuits, keyed by content digest (compilation is deterministic).
_CACHE: OrderedDict[tuple[bytes, int], CompiledCircuit] = OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


def compile_circuit(circuit: Circuit, *, max_k: int = MAX_K) -> CompiledCircuit:
    """Compile to R1CS (cached by content); raises CircuitTooLarge beyond ``max_k``, UnsupportedInstruction."""
    key = (circuit.digest(), max_k)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    compiled = _compile(circuit, max_k)
    with _CACHE_LOCK:
        _CACHE[key] = compiled
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled


def circuit_k(circuit: Circuit, *, max_k: int = MAX_K) -> int:
    """log2 of the evaluation domain: constraints + public inputs + 1 rounded up, at least 10, at most ``max_k``."""
    return compile_circuit(circuit, max_k=max_k).k
