"""Groth16 prover, snarkjs's construction (groth16_prove.js) on native curve objects.

``prove(pk, witness, r, s)`` is deterministic; ``create_random_proof(pk, witness)``
draws ``r, s`` from the OS RNG (secrets) and calls it, like arkworks'
``create_random_proof``.

    A  = alpha + sum z_i A_i + r delta                     (G1)
    B  = beta  + sum z_i B_i + s delta                     (G2, and B1 in G1)
    C  = sum_priv z_i C_i + sum h_i H_i + s A + r B1 - r s delta

Where the time goes: the five MSMs are the floor.  The native MSM runs on one
core and releases the GIL, so the MSMs run on a small thread pool (one thread a
core); the four that need only the witness start before the witness map (FFTs)
is computed on the calling thread, and the H MSM is split so the threads finish
together.  Per-key data (MSM base lists without the identity points, the H
points in the FFT's native order) is built once and cached on the key.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Lock
from typing import Any

from teeprover import curve
from teeprover.curve import R
from teeprover.errors import CircuitError, InvalidInput
from teeprover.groth16 import qap
from teeprover.groth16.types import Proof, ProvingKey

_WORKERS = max(2, min(os.cpu_count() or 2, 8))
_pool: ThreadPoolExecutor | None = None
_pool_lock = Lock()


def _forget_pool_in_child() -> None:
    # A forked child inherits the pool object but not its threads: start a fresh one there.
    global _pool, _pool_lock
    _pool, _pool_lock = None, Lock()


os.register_at_fork(after_in_child=_forget_pool_in_child)


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="msm")
        return _pool


class _Query:
    """One MSM's bases with the identity points left out (``idx``: the variables kept, None = all)."""

    def __init__(self, points: Sequence[Any], is_identity: Any, offset: int = 0) -> None:
        keep = [i for i, p in enumerate(points) if not is_identity(p)]
        self.idx: list[int] | None = None if len(keep) == len(points) and offset == 0 else [i + offset for i in keep]
        self.points = [points[i] for i in keep]

    def scalars(self, zs: list[Any], nonzero: list[bool] | None) -> tuple[list[Any], list[Any]]:
        """(points, scalars) for witness MSM scalars ``zs``; zero scalars dropped when ``nonzero`` is given."""
        if nonzero is None:
            if self.idx is None:
                return self.points, zs
            return self.points, [zs[i] for i in self.idx]
        idx = self.idx if self.idx is not None else range(len(zs))
        pts, scs = [], []
        for p, i in zip(self.points, idx, strict=True):
            if nonzero[i]:
                pts.append(p)
                scs.append(zs[i])
        return pts, scs


class _Bases:
    """Everything the prover needs from a key besides the QAP data, in the form the MSM takes."""

    def __init__(self, pk: ProvingKey, prep: qap._Prepared) -> None:
        g1_id, g2_id = curve.g1_is_identity, curve.g2_is_identity
        self.a = _Query(pk.a_query, g1_id)
        self.b1 = _Query(pk.b_g1_query, g1_id)
        self.b2 = _Query(pk.b_g2_query, g2_id)
        self.c = _Query(pk.c_query, g1_id, offset=pk.num_public + 1)
        h = pk.h_query
        self.h = [h[i] for i in prep.h_order]  # native FFT order (see qap.witness_map_native)


def _bases(pk: ProvingKey, prep: qap._Prepared) -> _Bases:
    cached = pk._cache.get("bases")
    if not isinstance(cached, _Bases):
        cached = _Bases(pk, prep)
        pk._cache["bases"] = cached
    return cached


def _chunks(points: list[Any], scalars: list[Any], parts: int) -> list[tuple[list[Any], list[Any]]]:
    n = len(points)
    if parts <= 1 or n < 4096:
        return [(points, scalars)]
    step = -(-n // parts)
    return [(points[i:i + step], scalars[i:i + step]) for i in range(0, n, step)]


def _msm_sum(msm: Any, jobs: list[tuple[list[Any], list[Any]]]) -> list[Future[Any]]:
    pool = _executor()
    return [pool.submit(msm, p, s) for p, s in jobs]


def _total(futures: list[Future[Any]], zero: Any) -> Any:
    acc = zero
    for f in futures:
        acc = acc + f.result()
    return acc


def prove(pk: ProvingKey, witness: Sequence[int], r: int, s: int) -> Proof:
    """Deterministic proof for a full witness ``z`` (``z[0] == 1``, then public inputs, then private)."""
    if len(witness) != pk.num_variables:
        raise InvalidInput(f"witness has {len(witness)} values, the key expects {pk.num_variables}")
    z = [int(x) % R for x in witness]
    if z[0] != 1:
        raise CircuitError("witness[0] must be 1")
    if not (0 <= r < R and 0 <= s < R):
        raise InvalidInput("r and s must be field elements")

    prep = qap.prepare(pk.coeffs, pk.domain_size, pk._cache)
    bases = _bases(pk, prep)
    zs = curve.msm_scalars(z)
    nonzero = [x != 0 for x in z] if 0 in z else None

    # G2 first (the longest: ~3 G1 MSMs), then the G1 ones; H, ready last, in one chunk per thread so
    # the threads finish together.  Splitting an MSM costs ~10% more CPU, so G2 is split only when
    # there are more than two threads.
    b2_f = _msm_sum(curve.msm_g2, _chunks(*bases.b2.scalars(zs, nonzero), _WORKERS // 2))
    a_f = _msm_sum(curve.msm_g1, [bases.a.scalars(zs, nonzero)])
    b1_f = _msm_sum(curve.msm_g1, [bases.b1.scalars(zs, nonzero)])
    c_f = _msm_sum(curve.msm_g1, [bases.c.scalars(zs, nonzero)])
    try:
        h = curve.msm_scalars_from_fr(qap.witness_map_native(prep, z))
        h_f = _msm_sum(curve.msm_g1, _chunks(bases.h, h, _WORKERS))
    except BaseException:
        for f in (*b2_f, *a_f, *b1_f, *c_f):
            f.cancel()
        raise

    g1_zero, g2_zero = curve.g1_identity(), curve.g2_identity()
    a = _total(a_f, g1_zero)
    b1 = _total(b1_f, g1_zero)
    b2 = _total(b2_f, g2_zero)
    c = _total(c_f, g1_zero) + _total(h_f, g1_zero)

    vk = pk.vk
    pi_a = a + vk.alpha_g1 + curve.g1_mul(pk.delta_g1, r)
    pi_b = b2 + vk.beta_g2 + curve.g2_mul(vk.delta_g2, s)
    pib1 = b1 + pk.beta_g1 + curve.g1_mul(pk.delta_g1, s)
    pi_c = c + curve.g1_mul(pi_a, s) + curve.g1_mul(pib1, r) - curve.g1_mul(pk.delta_g1, r * s)
    return Proof(a=pi_a, b=pi_b, c=pi_c)


def create_random_proof(pk: ProvingKey, witness: Sequence[int]) -> Proof:
    """A zero-knowledge proof with fresh ``r, s`` from the OS RNG (never stored)."""
    return prove(pk, witness, secrets.randbelow(R), secrets.randbelow(R))


__all__ = ["prove", "create_random_proof"]
