"""Groth16 verifier: ``e(A, B) == e(alpha, beta) e(sum x_i IC_i, gamma) e(C, delta)``.

Invalid is a value, malformed is an error: a proof that does not satisfy the
equation gives ``False``; a wrong number of public inputs or a public input that
is not a field element raises :class:`~teeprover.errors.InvalidInput`.  Points
are already validated (on the curve, in the subgroup) when they are decoded.
"""

from __future__ import annotations

from collections.abc import Sequence

from teeprover import curve
from teeprover.curve import G1, G2, R
from teeprover.errors import InvalidInput
from teeprover.groth16.types import Proof, VerifyingKey


def _check_inputs(vk: VerifyingKey, public_inputs: Sequence[int]) -> list[int]:
    if len(public_inputs) != vk.num_public:
        raise InvalidInput(f"expected {vk.num_public} public inputs, got {len(public_inputs)}",
                           details={"expected": vk.num_public, "got": len(public_inputs)})
    out = []
    for i, x in enumerate(public_inputs):
        if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < R:
            raise InvalidInput(f"public input {i} is not a field element", details={"index": i})
        out.append(x)
    return out


def verify(vk: VerifyingKey, public_inputs: Sequence[int], proof: Proof) -> bool:
    """True iff ``proof`` is valid for ``public_inputs`` under ``vk``."""
    xs = _check_inputs(vk, public_inputs)
    if not (isinstance(proof.a, G1) and isinstance(proof.b, G2) and isinstance(proof.c, G1)):
        raise InvalidInput("proof points have the wrong types")
    acc = vk.ic[0] + curve.msm_g1(list(vk.ic[1:]), curve.frs(xs)) if xs else vk.ic[0]
    try:
        return curve.pairing_check([
            (-proof.a, proof.b),
            (vk.alpha_g1, vk.beta_g2),
            (acc, vk.gamma_g2),
            (proof.c, vk.delta_g2),
        ])
    except (ValueError, ArithmeticError):  # fail closed
        return False


__all__ = ["verify"]
