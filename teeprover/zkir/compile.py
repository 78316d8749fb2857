"""ZKIR v2 → R1CS: the synthesizer in setup mode, cached by circuit digest.

The constraints come from :func:`teeprover.zkir.synth.synthesize` without a
preimage; the variable layout is described there.  Every constraint is
labelled ``"instruction i (op)"``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from teeprover.errors import CircuitTooLarge
from teeprover.r1cs import R1CS
from teeprover.zkir.ir import Circuit
from teeprover.zkir.synth import synthesize

MIN_K = 10
MAX_K = 24


@dataclass(frozen=True, eq=False)
class CompiledCircuit:
    circuit: Circuit
    r1cs: R1CS
    k: int

    @property
    def num_public(self) -> int:
        return self.r1cs.num_public

    def digest(self) -> bytes:
        return self.circuit.digest()


def _compile(circuit: Circuit, max_k: int) -> CompiledCircuit:
    num_public = circuit.num_public_inputs
    max_constraints = (1 << max_k) - num_public - 1
    if max_constraints < 0:
        raise CircuitTooLarge(f"{num_public} public inputs do not fit in k={max_k}")
    s = synthesize(circuit, max_constraints=max_constraints).s
    r1cs = R1CS(s.next_var, num_public, tuple(s.constraints), tuple(s.labels))
    k = max(MIN_K, r1cs.k())
    if k > max_k:  # pragma: no cover - the builder stops first
        raise CircuitTooLarge(f"the circuit needs k={k}, the maximum is {max_k}")
    return CompiledCircuit(circuit, r1cs, k)


# A few compiled circuits, keyed by content digest (compilation is deterministic).
_CACHE: OrderedDict[tuple[bytes, int], CompiledCircuit] = OrderedDict()
_CACHE_SIZE = 8
_CACHE_LOCK = threading.Lock()


def compile_circuit(circuit: Circuit, *, max_k: int = MAX_K) -> CompiledCircuit:
    """Compile to R1CS (cached by content); raises CircuitTooLarge beyond ``max_k``."""
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
