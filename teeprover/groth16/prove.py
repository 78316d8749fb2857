"""Groth16 prover, snarkjs's construction (groth16_prove.js) on native curve objects.

``prove(pk, witness, r, s)`` is deterministic; ``create_random_proof(pk, witness)``
draws ``r, s`` from the OS RNG (secrets) and calls it, like arkworks'
``create_random_proof``.

    A  = alpha + sum z_i A_i + r delta                     (G1)
    B  = beta  + sum z_i B_i + s delta                     (G2, and B1 in G1)
    C  = sum_priv z_i C_i + sum h_i H_i + s A + r B1 - r s delta

Where the time goes: the five MSMs are the floor.  The native MSM runs on one
core and releases the GIL, so the MSMs run on a small thread pool (one thread a
core); the four that need only the witness start before the witness map (native
NTTs on 32-byte vectors, :func:`teeprover.curve.witness_map`) is computed on the
calling thread, and the H MSM is split so the threads finish together.  Per-key
data (MSM base lists without the identity points, the coefficients as section-4
records) is built once and cached on the key.

:func:`prove_streamed` is the same proof over a key read a chunk of points at a
time (a ``.zkey`` file): what it holds is the witness and a few vectors of n
32-byte values (``A z``, ``B z``, ``h``, the NTT buffers) and a few chunks of
points, whatever the size of the key; MSM scalars are made a chunk at a time.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from threading import Lock
from typing import Any, Protocol

from teeprover import curve
from teeprover.curve import R
from teeprover.errors import CircuitError, InvalidInput
from teeprover.groth16 import qap
from teeprover.groth16.types import Proof, ProvingKey, VerifyingKey

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

    def __init__(self, pk: ProvingKey) -> None:
        self._pk = pk

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
        return list(self._pk.h_query)


def _bases(pk: ProvingKey) -> _Bases:
    cached = pk._cache.get("bases")
    if not isinstance(cached, _Bases):
        cached = _Bases(pk)
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
    """The witness as reduced ints: the caller's own list when it already is one (a k=24 witness is
    ~1 GB of Python ints: not copied for nothing)."""
    if isinstance(witness, list) and all(type(x) is int and 0 <= x < R for x in witness):
        z = witness
    else:
        z = [int(x) % R for x in witness]
    if not z or z[0] != 1:
        raise CircuitError("witness[0] must be 1")
    return z


def prove(pk: ProvingKey, witness: Sequence[int], r: int, s: int) -> Proof:
    """Deterministic proof for a full witness ``z`` (``z[0] == 1``, then public inputs, then private)."""
    if len(witness) != pk.num_variables:
        raise InvalidInput(f"witness has {len(witness)} values, the key expects {pk.num_variables}")
    z = _witness(witness)
    if not (0 <= r < R and 0 <= s < R):
        raise InvalidInput("r and s must be field elements")

    records = qap.prepare(pk.coeffs, pk._cache)
    bases = _bases(pk)
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
        a_z, b_z = curve.fr_evaluations(records, curve.fr_vector_to_bytes(z), pk.domain_size)
        h = curve.msm_scalars_from_bytes(curve.witness_map(a_z, b_z))
        del a_z, b_z
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


# ---------------------------------------------------------------------------------------------
# Streaming: the key a chunk at a time (bounded memory at large k)


class KeyChunks(Protocol):
    """A proving key read a chunk of points at a time (``teeprover.snarkjs.zkey.ZkeyChunks``)."""

    vk: VerifyingKey
    beta_g1: Any
    delta_g1: Any
    num_variables: int
    num_public: int
    domain_size: int

    def query_length(self, name: str) -> int: ...

    def chunks(self, name: str, points: int) -> Iterator[tuple[int, tuple[Any, ...], list[int]]]: ...

    def coefficients(self) -> bytes | memoryview: ...


CHUNK_POINTS = 1 << 18  # ~25 MB of G1 coordinates: MSMs this size lose a few % to one MSM over all points


class _Feeder:
    """Decodes chunks and hands their MSMs to the pool, at most ``slots`` chunks alive at once (decoded,
    queued or running): a chunk's points and scalars are dropped as soon as its MSM is done."""

    def __init__(self, slots: int) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self.futures: dict[str, list[Future[Any]]] = {}
        self.stop = threading.Event()

    def feed(self, key: KeyChunks, name: str, scalars: bytes, offset: int, chunk_points: int) -> None:
        """MSMs of query ``name`` against 32-byte ``scalars`` (value ``offset + i`` for point i of the
        query), made into MSM scalars a chunk at a time; zero scalars and identity points left out."""
        msm = curve.msm_g2 if name == "b2" else curve.msm_g1
        out = self.futures.setdefault(name, [])
        it = key.chunks(name, chunk_points)
        fr = curve.FR_BYTES
        while not self.stop.is_set():
            self._slots.acquire()  # before decoding: bounds the decoded chunks too
            try:
                start, pts, ids = next(it)
            except StopIteration:
                self._slots.release()
                return
            except BaseException:
                self._slots.release()
                raise
            raw = scalars[fr * (offset + start):fr * (offset + start + len(pts))]
            drop = set(ids).union(curve.zero_chunks(raw, fr))
            keep = [i for i in range(len(pts)) if i not in drop] if drop else range(len(pts))
            p = [pts[i] for i in keep] if drop else list(pts)
            sc = curve.msm_scalars_from_bytes(raw, keep)
            del pts, raw
            f = _executor().submit(msm, p, sc)
            del p, sc
            f.add_done_callback(lambda _f: self._slots.release())
            out.append(f)

    def cancel(self) -> None:
        self.stop.set()
        for fs in self.futures.values():
            for f in fs:
                f.cancel()


def _witness_bytes(witness: bytes | Sequence[int], nv: int) -> bytes:
    """The witness as one buffer of ``nv`` 32-byte values, each reduced, the first one 1."""
    if isinstance(witness, bytes):
        if len(witness) != nv * curve.FR_BYTES:
            raise InvalidInput(f"witness has {len(witness) / curve.FR_BYTES:g} values, the key expects {nv}")
        curve.fr_check_vector(witness, "witness")  # MalformedEncoding
        data = witness
    else:
        if len(witness) != nv:
            raise InvalidInput(f"witness has {len(witness)} values, the key expects {nv}")
        data = curve.fr_vector_to_bytes(witness)
    if data[:curve.FR_BYTES] != _ONE:
        raise CircuitError("witness[0] must be 1")
    return data


_ONE = (1).to_bytes(32, "little")


def prove_streamed(key: KeyChunks, witness: bytes | Sequence[int], r: int, s: int, *,
                   chunk_points: int = CHUNK_POINTS) -> Proof:
    """:func:`prove` over a key read a chunk at a time: what it holds at once is the witness, a few
    vectors of n 32-byte values and a few chunks of points (``_WORKERS + 1``), not the key.

    ``witness``: 32-byte little-endian values (a ``.wtns`` body: :func:`teeprover.snarkjs.wtns.read_wtns_bytes`;
    each must be reduced) or ints.  ``A z`` and ``B z`` come from the key's own coefficients
    (``key.coefficients()``, section-4 records).  The four witness-only MSMs are fed from a second
    thread while this one computes the witness map; then the H chunks.  The results are the same as
    :func:`prove`'s for the same key, witness, ``r`` and ``s``.
    """
    n, nv, n_pub = key.domain_size, key.num_variables, key.num_public
    z = _witness_bytes(witness, nv)
    if not (0 <= r < R and 0 <= s < R):
        raise InvalidInput("r and s must be field elements")
    expect = {"a": nv, "b1": nv, "b2": nv, "c": nv - n_pub - 1, "h": n}
    for name, length in expect.items():
        if key.query_length(name) != length:
            raise InvalidInput(f"query {name} has {key.query_length(name)} points, expected {length}")
    feeder = _Feeder(_WORKERS + 1)
    failure: list[BaseException] = []

    def witness_only() -> None:
        try:
            for name in ("b2", "a", "b1"):
                feeder.feed(key, name, z, 0, chunk_points)
            feeder.feed(key, "c", z, n_pub + 1, chunk_points)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=witness_only, name="msm-feeder", daemon=True)
    thread.start()
    try:
        a_z, b_z = curve.fr_evaluations(key.coefficients(), z, n)
        h = curve.witness_map(a_z, b_z)
        del a_z, b_z
        thread.join()
        if failure:
            raise failure[0]
        feeder.feed(key, "h", h, 0, chunk_points)
        del h
        g1_zero, g2_zero = curve.g1_identity(), curve.g2_identity()
        got = feeder.futures
        a = _total(got.get("a", []), g1_zero)
        b1 = _total(got.get("b1", []), g1_zero)
        b2 = _total(got.get("b2", []), g2_zero)
        c = _total(got.get("c", []), g1_zero) + _total(got.get("h", []), g1_zero)
    except BaseException:
        feeder.cancel()
        thread.join()
        raise
    vk = key.vk
    pi_a = a + vk.alpha_g1 + curve.g1_mul(key.delta_g1, r)
    pi_b = b2 + vk.beta_g2 + curve.g2_mul(vk.delta_g2, s)
    pib1 = b1 + key.beta_g1 + curve.g1_mul(key.delta_g1, s)
    pi_c = c + curve.g1_mul(pi_a, s) + curve.g1_mul(pib1, r) - curve.g1_mul(key.delta_g1, r * s)
    return Proof(a=pi_a, b=pi_b, c=pi_c)


def create_random_proof_streamed(key: KeyChunks, witness: bytes | Sequence[int], *,
                                 chunk_points: int = CHUNK_POINTS) -> Proof:
    """:func:`prove_streamed` with fresh ``r, s`` from the OS RNG (never stored)."""
    return prove_streamed(key, witness, secrets.randbelow(R), secrets.randbelow(R), chunk_points=chunk_points)


# Resident bytes of one decoded object (measured with VmRSS on CPython 3.11 and the pinned bindings: a
# G1/G2 point object ~194/330 B, an MSM scalar ~77 B, a field-sized int ~56 B), plus the list slot (8 B)
# that holds it.
_G1_OBJ, _G2_OBJ, _MSM_SCALAR_OBJ, _INT_OBJ, _SLOT = 200, 340, 85, 64, 8
_FR = 32  # a field element in a byte vector (the witness, A z, B z, h, the NTT buffers)
_AFFINE_G1, _AFFINE_G2 = 104, 200  # a point as the MSM copies it into Rust (affine + flag, padded)


def key_memory(pk: ProvingKey) -> int:
    """Bytes a decoded proving key holds (its points, coefficients and the prover's per-key caches):
    what a worker's key cache pays to keep it."""
    nv, n = pk.num_variables, pk.domain_size
    g1 = len(pk.a_query) + len(pk.b_g1_query) + len(pk.c_query) + len(pk.h_query) + len(pk.vk.ic)
    g2 = len(pk.b_g2_query)
    coeffs = len(pk.coeffs) * (76 + 44)  # a Coeff tuple with its int, and its section-4 record (qap.prepare)
    bases = (4 * nv + n) * _SLOT  # the MSM base lists refer to the same point objects
    return g1 * _G1_OBJ + g2 * _G2_OBJ + coeffs + bases


def proof_memory(num_variables: int, domain_size: int) -> int:
    """Bytes one proof adds on top of its decoded key: the witness (ints, bytes) and its MSM scalars, the
    witness map's byte vectors (``A z``, ``B z``, two NTT buffers and ``h``, half a vector of twiddles;
    then h's MSM scalars), and the copies the five concurrent MSMs make of their points and scalars."""
    nv, n = num_variables, domain_size
    witness = nv * (_INT_OBJ + _MSM_SCALAR_OBJ + 2 * _SLOT + _FR)
    fft = n * max(5 * _FR + _FR // 2, _FR + _MSM_SCALAR_OBJ + _SLOT)
    msm = (3 * nv + n) * (_AFFINE_G1 + 32) + nv * (_AFFINE_G2 + 32)
    return witness + fft + msm


def create_random_proof(pk: ProvingKey, witness: Sequence[int]) -> Proof:
    """A zero-knowledge proof with fresh ``r, s`` from the OS RNG (never stored)."""
    return prove(pk, witness, secrets.randbelow(R), secrets.randbelow(R))


__all__ = ["prove", "create_random_proof", "key_memory", "proof_memory", "KeyChunks",
           "prove_streamed", "create_random_proof_streamed", "CHUNK_POINTS"]
