"""Circuit-specific setup (phase 2) from prepared universal parameters, as snarkjs does it.

snarkjs's ``zkey new`` builds the key with gamma = delta = 1 (generators), then a
phase-2 contribution multiplies delta by a secret and divides the C and H queries
by it.  We do both at once with one fresh delta: the result is exactly the key
``snarkjs groth16 setup`` + one ``snarkjs zkey contribute`` would give
(gamma stays the generator, as in snarkjs).  tau, alpha and beta come from the
universal parameters and are not known here.

``setup(r1cs, params, toxic)`` is deterministic; ``generate_keys(r1cs, params)``
draws delta from the OS RNG and forgets it.
"""

from __future__ import annotations

import secrets
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from teeprover import curve
from teeprover.curve import G1, G2, R
from teeprover.errors import CircuitTooLarge, InvalidInput
from teeprover.groth16 import qap
from teeprover.groth16.types import LagrangeParams, ProvingKey, VerifyingKey
from teeprover.r1cs import R1CS


@dataclass(frozen=True)
class ToxicWaste:
    """The secret of our phase-2 step.  Never store or log it."""

    delta: int

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return "ToxicWaste(<secret>)"


def random_toxic_waste() -> ToxicWaste:
    return ToxicWaste(delta=1 + secrets.randbelow(R - 1))


def _sum_unit(terms: list[tuple[Any, int]], zero: Any) -> Any | None:
    """sum(point * coeff) by additions when every coeff is +-1 (the common case), else None."""
    acc = zero
    for p, k in terms:
        if k == 1:
            acc = acc + p
        elif k == R - 1:
            acc = acc - p
        else:
            return None
    return acc


def _msm_g1(terms: list[tuple[G1, int]]) -> G1:
    """sum(point * coeff) as one MSM."""
    return curve.msm_g1([p for p, _ in terms], curve.msm_scalars([k for _, k in terms]))


def _msm_g2(terms: list[tuple[G2, int]]) -> G2:
    return curve.msm_g2([p for p, _ in terms], curve.msm_scalars([k for _, k in terms]))


def _combine_g1(terms: list[tuple[G1, int]]) -> G1:
    """sum(point * coeff): by additions when every coeff is +-1, else one MSM."""
    acc = _sum_unit(terms, curve.g1_identity())
    return acc if acc is not None else _msm_g1(terms)


_MINUS_ONE = R - 1


def _split_unit(term_lists: Sequence[list[tuple[int, int]]], point: Callable[[int], Any], factor: int,
                msm: Callable[[list[tuple[Any, int]]], Any] = _msm_g1,
                ) -> tuple[list[Any], array[int], array[int]]:
    """``sum(point(i) * coeff) * factor`` for each term list: lists whose coefficients are all +-1
    (most circuits: all of them) become ``None`` plus their signed indices for curve.g1_sums_xy /
    g2_sums_xy; any other is one MSM here (``msm``)."""
    out: list[Any] = []
    signed, counts = array("i"), array("i")
    for terms in term_lists:
        # +(i + 1) / -(i + 1) for +-1, 0 (never an index) for any other coefficient: one pass a list
        row = [i + 1 if v == 1 else -1 - i if v == _MINUS_ONE else 0 for i, v in terms]
        if 0 in row:
            out.append(msm([(point(i), v * factor % R) for i, v in terms]))
        else:
            out.append(None)
            counts.append(len(row))
            signed.extend(row)
    return out, signed, counts


def _native_sums(points_xy: bytes, split: tuple[list[G1 | None], array[int], array[int]],
                 factor: int) -> tuple[G1, ...]:
    """The outputs of :func:`_split_unit`, its +-1 sums made natively (times ``factor`` unless 1)."""
    out, signed, counts = split
    sums = curve.g1_sums_xy(points_xy, signed, counts)
    if factor != 1:
        sums = curve.g1_scale_all_xy(sums, factor)
    made = iter(curve.g1s_from_xy(sums, check_subgroup=False))
    return tuple(p if p is not None else next(made) for p in out)


def _native_sums_g2(points: Sequence[G2], split: tuple[list[G2 | None], array[int], array[int]]) -> tuple[G2, ...]:
    out, signed, counts = split
    made = iter(curve.g2s_from_xy(curve.g2_sums_xy(curve.g2s_to_xy(points), signed, counts), check_subgroup=False))
    return tuple(p if p is not None else next(made) for p in out)


def setup(r1cs: R1CS, params: LagrangeParams, toxic: ToxicWaste) -> ProvingKey:
    """Deterministic Groth16 keys for ``r1cs`` from the prepared parameters and ``toxic``."""
    n = r1cs.domain_size()
    if n != params.domain_size:
        raise CircuitTooLarge(f"parameters are for domain size {params.domain_size}, circuit needs {n}",
                              details={"k": r1cs.k()})
    if not 0 < toxic.delta < R:
        raise InvalidInput("delta must be a non-zero field element")
    n_pub = r1cs.num_public
    n_vars = r1cs.num_variables
    if n_vars < n_pub + 1:
        raise InvalidInput("circuit has fewer variables than public inputs")

    delta_inv = curve.inv(toxic.delta)
    # C and H are over delta: one scalar multiplication a point, two million of them at k=20 and the
    # bulk of setup's CPU.  They run natively on every core (curve.g1_scale_all, GIL released) while
    # this thread does the Python part, so the cores are not left idle during it.
    with ThreadPoolExecutor(max_workers=6) as pool:
        h_job = pool.submit(curve.g1_scale_all, params.h_g1, delta_inv)
        coeffs = qap.constraint_coeffs(r1cs)
        tau_g1, tau_g2 = params.tau_g1, params.tau_g2
        alpha_tau, beta_tau = params.alpha_tau_g1, params.beta_tau_g1
        # A, B (G1), C and IC name their points by index (beta_tau[c]: c, alpha_tau[c]: n + c, tau_g1[c]:
        # 2n + c) into one array of affine points, B in G2 by index into tau_g2, so their sums of
        # +-points are made natively (curve.g1_sums_xy / g2_sums_xy); IC and C share one formula:
        # beta*A + alpha*B + C at tau.
        a_terms: list[list[tuple[int, int]]] = [[] for _ in range(n_vars)]
        b1_terms: list[list[tuple[int, int]]] = [[] for _ in range(n_vars)]
        b2_terms: list[list[tuple[int, int]]] = [[] for _ in range(n_vars)]
        k_terms: list[list[tuple[int, int]]] = [[] for _ in range(n_vars)]
        for cf in coeffs:
            c, s, v = cf.constraint, cf.signal, cf.value
            if cf.matrix == 0:
                a_terms[s].append((2 * n + c, v))
                k_terms[s].append((c, v))
            else:
                b1_terms[s].append((2 * n + c, v))
                b2_terms[s].append((c, v))
                k_terms[s].append((n + c, v))
        for c, con in enumerate(r1cs.constraints):
            for s, v in con.c.items():
                if v % R:
                    k_terms[s].append((2 * n + c, v % R))
        sources = (beta_tau, alpha_tau, tau_g1)

        def point(i: int) -> G1:
            return sources[i // n][i % n]

        source_xy = b"".join([curve.g1s_to_xy(a) for a in sources])
        c_job = pool.submit(_native_sums, source_xy, _split_unit(k_terms[n_pub + 1:], point, delta_inv), delta_inv)
        a_job = pool.submit(_native_sums, source_xy, _split_unit(a_terms, point, 1), 1)
        b1_job = pool.submit(_native_sums, source_xy, _split_unit(b1_terms, point, 1), 1)
        # IC[0] sums every constraint's constant (an MSM over all of them): on its own thread too
        ic_job = pool.submit(lambda: tuple(_combine_g1([(point(i), v) for i, v in k_terms[s]])
                                           for s in range(n_pub + 1)))
        b2_job = pool.submit(_native_sums_g2, tau_g2, _split_unit(b2_terms, tau_g2.__getitem__, 1, _msm_g2))
        ic, a_query, b_g1_query, c_query = ic_job.result(), a_job.result(), b1_job.result(), c_job.result()
        b_g2_query = b2_job.result()
        h_query = tuple(h_job.result())
        del source_xy

    vk = VerifyingKey(
        alpha_g1=params.alpha_g1,
        beta_g2=params.beta_g2,
        gamma_g2=curve.g2_generator(),
        delta_g2=curve.g2_mul(curve.g2_generator(), toxic.delta),
        ic=ic,
    )
    return ProvingKey(
        vk=vk,
        beta_g1=params.beta_g1,
        delta_g1=curve.g1_mul(curve.g1_generator(), toxic.delta),
        num_variables=n_vars,
        num_public=n_pub,
        domain_size=n,
        coeffs=coeffs,
        a_query=a_query,
        b_g1_query=b_g1_query,
        b_g2_query=b_g2_query,
        c_query=c_query,
        h_query=h_query,
    )


def generate_keys(r1cs: R1CS, params: LagrangeParams) -> ProvingKey:
    """Keys with a fresh delta from the OS RNG (thrown away afterwards)."""
    return setup(r1cs, params, random_toxic_waste())


__all__ = ["ToxicWaste", "random_toxic_waste", "setup", "generate_keys"]
