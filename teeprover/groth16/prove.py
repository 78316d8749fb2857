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
from functools import cached_property
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

    def __init__(self, points: Sequence[Any], is_identity: Any, offset: int = 0,
                 identities: list[int] | None = None) -> None:
        if identities is None:
            keep = [i for i, p in enumerate(points) if not is_identity(p)]
        elif not identities:
            keep = list(range(len(points)))
        else:
            drop = set(identities)
            keep = [i for i in range(len(points)) if i not in drop]
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
    """Everything the prover needs from a key besides the QAP data, in the form the MSM takes (each built on
    first use: a prover whose witness-only MSMs were started early (:class:`EarlyMsms`) only needs ``h``)."""

    def __init__(self, pk: ProvingKey, prep: qap._Prepared) -> None:
        self._pk = pk
        self._prep = prep

    @cached_property
    def a(self) -> _Query:
        return _Query(self._pk.a_query, curve.g1_is_identity)

    @cached_property
    def b1(self) -> _Query:
        return _Query(self._pk.b_g1_query, curve.g1_is_identity)

    @cached_property
    def b2(self) -> _Query:
        return _Query(self._pk.b_g2_query, curve.g2_is_identity)

    @cached_property
    def c(self) -> _Query:
        return _Query(self._pk.c_query, curve.g1_is_identity, offset=self._pk.num_public + 1)

    @cached_property
    def h(self) -> list[Any]:
        h = self._pk.h_query
        return [h[i] for i in self._prep.h_order]  # native FFT order (see qap.witness_map_native)


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


def _witness(witness: Sequence[int]) -> list[int]:
    z = [int(x) % R for x in witness]
    if not z or z[0] != 1:
        raise CircuitError("witness[0] must be 1")
    return z


class EarlyMsms:
    """The four MSMs that need only the witness (A, B1, B2 in G2, C), started while the key is still loading.

    Pass :meth:`on_query` as ``read_zkey(on_query=...)``: each MSM goes to the thread pool as soon as its
    bases are decoded (B2 first, the longest), so the rest of the key decoding, the circuit checks and
    the witness map run on the other core meanwhile; then ``prove(pk, witness, r, s, early=this)``.
    Nothing here is a result until :func:`prove` has checked the witness against the key: a caller that
    gives up calls :meth:`cancel`.
    """

    def __init__(self, witness: Sequence[int], num_public: int) -> None:
        self.z = _witness(witness)
        self.zs = curve.msm_scalars(self.z)
        self.nonzero = [x != 0 for x in self.z] if 0 in self.z else None
        self.num_public = num_public
        self.futures: dict[str, list[Future[Any]]] = {}
        # ``qap.evaluations_native`` of this witness on the key, if the caller computed it from the key's
        # matrices itself (it must be exactly that: it goes into the witness map).
        self.evals: tuple[list[int], list[int]] | None = None

    def on_query(self, name: str, points: Sequence[Any], identities: list[int] | None = None) -> None:
        """Start the MSM of query ``name`` ("a", "b1", "b2", "c"; others ignored) over ``points``.

        ``identities``: the indices of the identity points, if the caller knows them (else each point is
        tested).  A query of the wrong length is not started (``prove`` then reports the mismatch).
        """
        n = len(self.z)
        if name == "b2" and len(points) == n:
            q = _Query(points, curve.g2_is_identity, identities=identities)
            self.futures[name] = _msm_sum(curve.msm_g2, _chunks(*q.scalars(self.zs, self.nonzero), _WORKERS // 2))
        elif name in ("a", "b1") and len(points) == n:
            q = _Query(points, curve.g1_is_identity, identities=identities)
            self.futures[name] = _msm_sum(curve.msm_g1, [q.scalars(self.zs, self.nonzero)])
        elif name == "c" and len(points) == n - self.num_public - 1:
            q = _Query(points, curve.g1_is_identity, offset=self.num_public + 1, identities=identities)
            self.futures[name] = _msm_sum(curve.msm_g1, [q.scalars(self.zs, self.nonzero)])

    def cancel(self) -> None:
        for fs in self.futures.values():
            for f in fs:
                f.cancel()


def prove(pk: ProvingKey, witness: Sequence[int], r: int, s: int, *, early: EarlyMsms | None = None) -> Proof:
    """Deterministic proof for a full witness ``z`` (``z[0] == 1``, then public inputs, then private).

    ``early``: MSMs already started on this key's queries with this witness (see :class:`EarlyMsms`).
    """
    if len(witness) != pk.num_variables:
        raise InvalidInput(f"witness has {len(witness)} values, the key expects {pk.num_variables}")
    z = _witness(witness)
    if not (0 <= r < R and 0 <= s < R):
        raise InvalidInput("r and s must be field elements")
    started: dict[str, list[Future[Any]]] = {}
    if early is not None:
        if early.z != z or early.num_public != pk.num_public:
            raise InvalidInput("the early MSMs were started for another witness")
        started = early.futures

    prep = qap.prepare(pk.coeffs, pk.domain_size, pk._cache)
    bases = _bases(pk, prep)
    zs = early.zs if early is not None else curve.msm_scalars(z)
    nonzero = early.nonzero if early is not None else ([x != 0 for x in z] if 0 in z else None)

    # G2 first (the longest: ~3 G1 MSMs), then the G1 ones; H, ready last, in one chunk per thread so
    # the threads finish together.  Splitting an MSM costs ~10% more CPU, so G2 is split only when
    # there are more than two threads.
    b2_f = started.get("b2") or _msm_sum(curve.msm_g2, _chunks(*bases.b2.scalars(zs, nonzero), _WORKERS // 2))
    a_f = started.get("a") or _msm_sum(curve.msm_g1, [bases.a.scalars(zs, nonzero)])
    b1_f = started.get("b1") or _msm_sum(curve.msm_g1, [bases.b1.scalars(zs, nonzero)])
    c_f = started.get("c") or _msm_sum(curve.msm_g1, [bases.c.scalars(zs, nonzero)])
    try:
        h = curve.msm_scalars_from_fr(qap.witness_map_native(prep, z, early.evals if early is not None else None))
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


# Resident bytes of one decoded object (measured with VmRSS on CPython 3.11 and the pinned bindings: a
# G1/G2 point object ~194/330 B, an FFT scalar ~85 B, an MSM scalar ~77 B, a field-sized int ~56 B), plus
# the list slot (8 B) that holds it.
_G1_OBJ, _G2_OBJ, _FR_OBJ, _MSM_SCALAR_OBJ, _INT_OBJ, _SLOT = 200, 340, 93, 85, 64, 8
_AFFINE_G1, _AFFINE_G2 = 104, 200  # a point as the MSM copies it into Rust (affine + flag, padded)


def key_memory(pk: ProvingKey) -> int:
    """Bytes a decoded proving key holds (its points, coefficients and the prover's per-key caches):
    what a worker's key cache pays to keep it."""
    nv, n = pk.num_variables, pk.domain_size
    g1 = len(pk.a_query) + len(pk.b_g1_query) + len(pk.c_query) + len(pk.h_query) + len(pk.vk.ic)
    g2 = len(pk.b_g2_query)
    coeffs = len(pk.coeffs) * 120  # a Coeff tuple with its int, and its prepared (slot, signal) entry
    bases = (4 * nv + n) * _SLOT  # the MSM base lists refer to the same point objects
    domain = n * (_FR_OBJ + _INT_OBJ)  # the odd-coset shift and the H order
    return g1 * _G1_OBJ + g2 * _G2_OBJ + coeffs + bases + domain


def proof_memory(num_variables: int, domain_size: int) -> int:
    """Bytes one proof adds on top of its decoded key: the witness and its MSM scalars, the witness map's
    FFT vectors (at most four of n scalars at once, plus the two evaluation vectors), and the copies
    the five concurrent MSMs make of their points and scalars."""
    nv, n = num_variables, domain_size
    witness = nv * (_INT_OBJ + _MSM_SCALAR_OBJ + 2 * _SLOT)
    fft = n * (2 * _INT_OBJ + 4 * _FR_OBJ + _MSM_SCALAR_OBJ)
    msm = (3 * nv + n) * (_AFFINE_G1 + 32) + nv * (_AFFINE_G2 + 32)
    return witness + fft + msm


def create_random_proof(pk: ProvingKey, witness: Sequence[int], *, early: EarlyMsms | None = None) -> Proof:
    """A zero-knowledge proof with fresh ``r, s`` from the OS RNG (never stored)."""
    return prove(pk, witness, secrets.randbelow(R), secrets.randbelow(R), early=early)


__all__ = ["prove", "create_random_proof", "EarlyMsms", "key_memory", "proof_memory"]
