"""Groth16 prover, snarkjs's construction (groth16_prove.js) on native curve objects.

``prove(pk, witness, r, s)`` is deterministic; ``create_random_proof(pk, witness)``
draws ``r, s`` from the OS RNG (secrets) and calls it, like arkworks'
``create_random_proof``.

    A  = alpha + sum z_i A_i + r delta                     (G1)
    B  = beta  + sum z_i B_i + s delta                     (G2, and B1 in G1)
    C  = sum_priv z_i C_i + sum h_i H_i + s A + r B1 - r s delta
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from teeprover import curve
from teeprover.curve import R
from teeprover.errors import CircuitError, InvalidInput
from teeprover.groth16 import qap
from teeprover.groth16.types import Proof, ProvingKey


def _prepared(pk: ProvingKey) -> qap._Prepared:
    return qap.prepare(pk.coeffs, pk.domain_size, pk._cache)


def _lists(pk: ProvingKey) -> tuple[list, list, list, list, list]:
    """The query tuples as lists (what the native MSM takes), converted once per key."""
    cached = pk._cache.get("lists")
    if cached is None:
        cached = (list(pk.a_query), list(pk.b_g1_query), list(pk.b_g2_query), list(pk.c_query), list(pk.h_query))
        pk._cache["lists"] = cached
    return cached  # type: ignore[return-value]


def prove(pk: ProvingKey, witness: Sequence[int], r: int, s: int) -> Proof:
    """Deterministic proof for a full witness ``z`` (``z[0] == 1``, then public inputs, then private)."""
    if len(witness) != pk.num_variables:
        raise InvalidInput(f"witness has {len(witness)} values, the key expects {pk.num_variables}")
    z = [int(x) % R for x in witness]
    if z[0] != 1:
        raise CircuitError("witness[0] must be 1")
    if not (0 <= r < R and 0 <= s < R):
        raise InvalidInput("r and s must be field elements")

    prep = _prepared(pk)
    a_q, b1_q, b2_q, c_q, h_q = _lists(pk)
    z_fr = curve.frs(z)
    h = qap.witness_map(prep, z)

    a = curve.msm_g1(a_q, z_fr)
    b1 = curve.msm_g1(b1_q, z_fr)
    b2 = curve.msm_g2(b2_q, z_fr)
    c = curve.msm_g1(c_q, z_fr[pk.num_public + 1:])
    c_h = curve.msm_g1(h_q, h)

    r_fr, s_fr = curve.fr(r), curve.fr(s)
    vk = pk.vk
    pi_a = a + vk.alpha_g1 + pk.delta_g1 * r_fr
    pi_b = b2 + vk.beta_g2 + vk.delta_g2 * s_fr
    pib1 = b1 + pk.beta_g1 + pk.delta_g1 * s_fr
    pi_c = c + c_h + pi_a * s_fr + pib1 * r_fr - pk.delta_g1 * curve.fr(r * s)
    return Proof(a=pi_a, b=pi_b, c=pi_c)


def create_random_proof(pk: ProvingKey, witness: Sequence[int]) -> Proof:
    """A zero-knowledge proof with fresh ``r, s`` from the OS RNG (never stored)."""
    return prove(pk, witness, secrets.randbelow(R), secrets.randbelow(R))


__all__ = ["prove", "create_random_proof"]
