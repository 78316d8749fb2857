"""Circuit-specific setup (phase 2) from prepared universal parameters, as snarkjs does it.

snarkjs's ``zkey new`` builds the key with gamma = delta = 1 (generators), then a
phase-2 contribution multiplies delta by a secret and divides the C and H queries
by it.  We do both at once with one fresh delta: the result is exactly the key
``snarkjs groth16 setup`` + one ``snarkjs zkey contribute`` would give
(gamma stays the generator, as in snarkjs).  tau, alpha and beta come from the
universal parameters and are not known here.

``setup_xy(r1cs, params, toxic)`` is the algorithm, on byte arrays: the parameters as affine
``x || y`` bytes (:class:`LagrangeXY`, ``Ptau.lagrange_xy``), the R1CS entries grouped per signal in
arrays (:mod:`teeprover.groth16.matrices`), the queries made by the native helpers (sums of +-points,
one scaling by 1/delta), a key of byte arrays out (:class:`KeyXY`, written by
``snarkjs.zkey.write_zkey_xy``): no point object a parameter or a query, so k=22 fits.
``setup(r1cs, params, toxic)`` is the same on point objects (deterministic); ``generate_keys(r1cs, params)``
draws delta from the OS RNG and forgets it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from teeprover import curve
from teeprover.curve import G1, R
from teeprover.errors import CircuitTooLarge, InvalidInput
from teeprover.groth16 import qap
from teeprover.groth16.matrices import Entries, Grouped, Matrices, group
from teeprover.groth16.types import Coeff, LagrangeParams, LagrangeXY, ProvingKey, VerifyingKey
from teeprover.r1cs import R1CS


@dataclass(frozen=True)
class ToxicWaste:
    """The secret of our phase-2 step.  Never store or log it."""

    delta: int

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return "ToxicWaste(<secret>)"


def random_toxic_waste() -> ToxicWaste:
    return ToxicWaste(delta=1 + secrets.randbelow(R - 1))


_CHUNK = 1 << 16  # points decoded into objects at a time for an MSM
_HALF = R // 2


@dataclass(frozen=True)
class _Group:
    """What setup's sums use of G1 or G2: affine ``x || y`` size, decoding and encoding, the MSM, the
    identity, the native sums of +-points."""

    size: int
    decode: Callable[..., tuple[Any, ...]]
    encode: Callable[[Any], bytes]
    msm: Callable[[list[Any], list[Any]], Any]
    identity: Callable[[], Any]
    sums: Callable[..., bytes]


_GROUPS = {
    1: _Group(curve.G1_XY_BYTES, curve.g1s_from_xy, curve.g1s_to_xy, curve.msm_g1, curve.g1_identity, curve.g1_sums_xy),
    2: _Group(curve.G2_XY_BYTES, curve.g2s_from_xy, curve.g2s_to_xy, curve.msm_g2, curve.g2_identity, curve.g2_sums_xy),
}


def _msm_xy(g: _Group, points: bytes, index: npt.NDArray[np.int64], coeffs: list[int]) -> bytes:
    """``sum(point[index[j]] * coeffs[j])`` as affine bytes: the points are decoded into objects and
    summed by MSMs a chunk at a time (IC[0] sums every constraint's constant: n points).

    A coefficient above r/2 is taken as minus a small one (``v = -(r - v)``): circuits' constants are
    mostly small or small negative numbers, and the library's MSM is ~7x faster on 20-bit scalars than
    on 255-bit ones (1M points: ~2 s instead of ~14 s)."""
    rows = np.frombuffer(points, np.uint8).reshape(-1, g.size)
    negative = np.fromiter((v > _HALF for v in coeffs), np.bool_, len(coeffs))
    acc = g.identity()
    for sign, pick in ((1, ~negative), (-1, negative)):
        idx = index[pick]
        magnitudes = [v if sign == 1 else R - v for v in _coeffs_where(coeffs, pick)]
        part = g.identity()
        for i in range(0, len(idx), _CHUNK):
            pts = g.decode(rows[idx[i:i + _CHUNK]].tobytes(), check_subgroup=False)
            part = part + g.msm(list(pts), curve.msm_scalars(magnitudes[i:i + _CHUNK]))
        acc = acc + part if sign == 1 else acc - part
    return g.encode([acc])


def _coeffs_where(coeffs: list[int], pick: npt.NDArray[np.bool_]) -> list[int]:
    return [v for v, p in zip(coeffs, pick.tolist(), strict=True) if p]


def _sums(group: int, points: bytes, grouped: Callable[[], Grouped]) -> bytes:
    """One point a signal of ``grouped()``: the +-1 sums natively (curve.g1_sums_xy / g2_sums_xy), the
    other signals by :func:`_msm_xy`."""
    g, gr = _GROUPS[group], grouped()
    out = g.sums(points, gr.terms, gr.counts)
    if gr.msm:
        patched = bytearray(out)
        del out
        for s, index, coeffs in gr.msm:
            patched[(s - gr.lo) * g.size:(s - gr.lo + 1) * g.size] = _msm_xy(g, points, index, coeffs)
        out = bytes(patched)
        del patched
    return out


@dataclass(frozen=True, eq=False)
class KeyXY:
    """A proving key as affine ``x || y`` byte arrays (standard form, zeros for the identity; layout of
    :func:`teeprover.curve.g1s_to_xy`), in zkey section order: what the streamed ``.zkey`` writer
    (:func:`teeprover.snarkjs.zkey.write_zkey_xy`) takes, with ``matrices`` for section 4.
    See :class:`ProvingKey` for what each query holds."""

    num_variables: int
    num_public: int
    domain_size: int
    matrices: Matrices
    alpha_g1: bytes
    beta_g1: bytes
    beta_g2: bytes
    gamma_g2: bytes
    delta_g1: bytes
    delta_g2: bytes
    ic: bytes
    a_query: bytes
    b_g1_query: bytes
    b_g2_query: bytes
    c_query: bytes
    h_query: bytes

    def verifying_key(self) -> VerifyingKey:
        (alpha,), (beta, gamma, delta) = (curve.g1s_from_xy(self.alpha_g1, check_subgroup=False),
                                          curve.g2s_from_xy(self.beta_g2 + self.gamma_g2 + self.delta_g2,
                                                            check_subgroup=False))
        return VerifyingKey(alpha_g1=alpha, beta_g2=beta, gamma_g2=gamma, delta_g2=delta,
                            ic=curve.g1s_from_xy(self.ic, check_subgroup=False))

    def proving_key(self, coeffs: tuple[Coeff, ...]) -> ProvingKey:
        """The key as point objects (what the prover takes); ``coeffs``: qap.constraint_coeffs of its R1CS."""
        def g1s(b: bytes) -> tuple[G1, ...]:
            return curve.g1s_from_xy(b, check_subgroup=False)

        return ProvingKey(vk=self.verifying_key(), beta_g1=g1s(self.beta_g1)[0], delta_g1=g1s(self.delta_g1)[0],
                          num_variables=self.num_variables, num_public=self.num_public,
                          domain_size=self.domain_size, coeffs=coeffs, a_query=g1s(self.a_query),
                          b_g1_query=g1s(self.b_g1_query),
                          b_g2_query=curve.g2s_from_xy(self.b_g2_query, check_subgroup=False),
                          c_query=g1s(self.c_query), h_query=g1s(self.h_query))


def setup_xy(r1cs: R1CS, params: LagrangeXY, toxic: ToxicWaste) -> KeyXY:
    """Deterministic Groth16 keys for ``r1cs`` from the prepared parameters and ``toxic``, as byte arrays
    (the one setup algorithm; :func:`setup` wraps it in point objects)."""
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
    g1s = params.g1_sources
    if len(g1s) != 3 * n * curve.G1_XY_BYTES or len(params.tau_g2) != n * curve.G2_XY_BYTES \
            or len(params.h_g1) != n * curve.G1_XY_BYTES:
        raise InvalidInput(f"parameters do not hold {n} points a section")

    delta_inv = curve.inv(toxic.delta)
    # C and H are over delta: one scalar multiplication a point, two million of them at k=20 and the
    # bulk of setup's CPU.  They run natively on every core (curve.g1_scale_all_xy, GIL released), H
    # from the start while this thread reads the matrices and the other queries are summed, then C.
    with ThreadPoolExecutor(max_workers=6) as pool:
        h_job = pool.submit(curve.g1_scale_all_xy, params.h_g1, delta_inv)
        mats = Matrices.from_r1cs(r1cs)
        ab, cc = mats.ab, mats.c
        is_a = ab.matrix == 0
        is_b = ~is_a
        # A, B (G1), C and IC name their points by index into g1_sources (beta_tau[c]: c, alpha_tau[c]: n + c,
        # tau_g1[c]: 2n + c), B in G2 by index into tau_g2.  IC and C share one formula, beta*A + alpha*B + C
        # at tau: the entries of all three matrices, grouped per signal.
        k_entries = Entries(matrix=np.concatenate([ab.matrix, cc.matrix]),
                            constraint=np.concatenate([ab.constraint, cc.constraint]),
                            signal=np.concatenate([ab.signal, cc.signal]), unit=np.concatenate([ab.unit, cc.unit]),
                            ref=np.concatenate([ab.ref, cc.ref]), values=ab.values)
        k_index = k_entries.constraint + n * k_entries.matrix.astype(np.int64)

        def c_over_delta() -> bytes:
            sums = _sums(1, g1s, lambda: group(k_index, k_entries, n_pub + 1, n_vars))
            # One scaling at a time: each runs on every core, and two at once (four threads on two
            # cores) cost ~10 % more CPU (k=20: 181 against ~166 CPU-s) for no gain in wall time.
            h_job.result()
            return curve.g1_scale_all_xy(sums, delta_inv)

        c_job = pool.submit(c_over_delta)
        ic_job = pool.submit(_sums, 1, g1s, lambda: group(k_index, k_entries, 0, n_pub + 1))
        a_job = pool.submit(_sums, 1, g1s, lambda: group(2 * n + ab.constraint[is_a], ab, 0, n_vars, is_a))
        b1_job = pool.submit(_sums, 1, g1s, lambda: group(2 * n + ab.constraint[is_b], ab, 0, n_vars, is_b))
        b2_job = pool.submit(_sums, 2, params.tau_g2, lambda: group(ab.constraint[is_b], ab, 0, n_vars, is_b))
        ic, a_query, b_g1_query, b_g2_query = ic_job.result(), a_job.result(), b1_job.result(), b2_job.result()
        c_query, h_query = c_job.result(), h_job.result()

    return KeyXY(
        num_variables=n_vars, num_public=n_pub, domain_size=n, matrices=mats,
        alpha_g1=params.alpha_g1, beta_g1=params.beta_g1, beta_g2=params.beta_g2,
        gamma_g2=curve.g2s_to_xy([curve.g2_generator()]),
        delta_g1=curve.g1s_to_xy([curve.g1_mul(curve.g1_generator(), toxic.delta)]),
        delta_g2=curve.g2s_to_xy([curve.g2_mul(curve.g2_generator(), toxic.delta)]),
        ic=ic, a_query=a_query, b_g1_query=b_g1_query, b_g2_query=b_g2_query, c_query=c_query, h_query=h_query,
    )


def setup(r1cs: R1CS, params: LagrangeParams | LagrangeXY, toxic: ToxicWaste) -> ProvingKey:
    """Deterministic Groth16 keys for ``r1cs`` from the prepared parameters and ``toxic``
    (:func:`setup_xy`, on the parameters' bytes; the result as point objects).  ``Ptau.lagrange_xy``
    gives the bytes straight from the file; point objects are converted first."""
    xy = params if isinstance(params, LagrangeXY) else LagrangeXY.from_params(params)
    return setup_xy(r1cs, xy, toxic).proving_key(qap.constraint_coeffs(r1cs))


def generate_keys(r1cs: R1CS, params: LagrangeParams | LagrangeXY) -> ProvingKey:
    """Keys with a fresh delta from the OS RNG (thrown away afterwards)."""
    return setup(r1cs, params, random_toxic_waste())


__all__ = ["ToxicWaste", "random_toxic_waste", "KeyXY", "setup_xy", "setup", "generate_keys"]
