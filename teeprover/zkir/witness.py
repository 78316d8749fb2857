"""Witness generation: the synthesizer in prove mode (Midnight's ``preprocess`` plus every variable's value).

:func:`teeprover.zkir.synth.synthesize` with a preimage runs the instructions
as Midnight's IR VM does and assigns each variable the compiled R1CS
allocated, in the same order, giving the full assignment ``z``.
"""

from __future__ import annotations

from teeprover.zkir.compile import CompiledCircuit
from teeprover.zkir.preimage import ProofPreimage
from teeprover.zkir.synth import synthesize


def generate_witness(compiled: CompiledCircuit, preimage: ProofPreimage, *,
                     verify: bool = True) -> tuple[list[int], list[int]]:
    """The full assignment ``z`` (``z[0] = 1``) and the proof's public inputs ``z[1 : 1 + num_public]``.

    Raises :class:`CircuitError` naming the failing instruction.  With ``verify``
    (default) the assignment is also checked against every R1CS constraint, so a
    proof is never attempted on a witness that does not satisfy the circuit.
    """
    z = synthesize(compiled.circuit, preimage).s.z
    if len(z) != compiled.r1cs.num_variables:  # pragma: no cover - a gadget allocating differently is a bug
        raise AssertionError(f"witness has {len(z)} values, the R1CS has {compiled.r1cs.num_variables}")
    if verify:
        compiled.r1cs.check_witness(z)
    return z, z[1:1 + compiled.num_public]
