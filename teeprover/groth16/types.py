"""Groth16 data types shared by every stage (qap, setup, prove, verify, encoding, importers).

The model mirrors snarkjs's ``.zkey`` (Groth16, BLS12-381) so that keys made by our
own :mod:`teeprover.groth16.setup` and keys imported from a snarkjs ``.zkey`` run
through the same prover:

* ``ProvingKey.coeffs`` is zkey section 4: the sparse entries of the A and B
  matrices (``matrix`` 0 = A, 1 = B), *including* the extra rows snarkjs adds for
  the public inputs: for every ``s in 0..num_public`` an A entry
  ``(0, num_constraints + s, s, 1)``.  C is never stored: the prover uses
  ``C(w_i) = A(w_i) * B(w_i)`` on the constraint domain (true for a satisfying witness).
* ``a_query``/``b_g1_query``/``b_g2_query`` (sections 5/6/7) have one point per
  variable (the identity where a variable does not occur); ``c_query`` (section 8)
  has one point per *private* variable (indices ``num_public+1 ..``) and is
  already divided by delta; ``h_query`` (section 9) has ``domain_size`` points:
  the odd-indexed Lagrange basis of the 2n-th roots of unity at tau, over delta.
* ``ic`` (section 3) has ``num_public + 1`` points, over gamma.

All field elements are Python ``int`` in canonical form ``0 <= x < R``; all
points are :mod:`teeprover.curve` objects (native library, kept native).
Secrets (tau, alpha, beta, delta, r, s) never appear in these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from teeprover import curve
from teeprover.curve import G1, G2


class Coeff(NamedTuple):
    """One non-zero entry of the A (matrix 0) or B (matrix 1) matrix, as in zkey section 4."""

    matrix: int
    constraint: int
    signal: int
    value: int


@dataclass(frozen=True)
class VerifyingKey:
    alpha_g1: G1
    beta_g2: G2
    gamma_g2: G2
    delta_g2: G2
    ic: tuple[G1, ...]  # num_public + 1 points

    @property
    def num_public(self) -> int:
        return len(self.ic) - 1


@dataclass(frozen=True, eq=False)
class ProvingKey:
    vk: VerifyingKey
    beta_g1: G1
    delta_g1: G1
    num_variables: int  # including the constant variable 0
    num_public: int
    domain_size: int  # n = 2^power >= num_constraints + num_public + 1
    coeffs: tuple[Coeff, ...]
    a_query: tuple[G1, ...]  # num_variables points
    b_g1_query: tuple[G1, ...]  # num_variables points
    b_g2_query: tuple[G2, ...]  # num_variables points
    c_query: tuple[G1, ...]  # num_variables - num_public - 1 points (private variables)
    h_query: tuple[G1, ...]  # domain_size points
    # Per-key caches (prepared matrices etc.), filled lazily by the prover; not part of the key.
    _cache: dict[str, object] = field(default_factory=dict, repr=False, compare=False)

    @property
    def power(self) -> int:
        return self.domain_size.bit_length() - 1


@dataclass(frozen=True, eq=False)
class LagrangeParams:
    """What circuit-specific setup needs from prepared universal parameters (a phase-2 ``.ptau``).

    For a domain of size n (ffjavascript's roots ``w^i``, ``L_i`` the Lagrange basis):
    ``tau_g1[i] = L_i(tau) G1`` (ptau section 12), ``tau_g2`` (section 13),
    ``alpha_tau_g1`` (section 14), ``beta_tau_g1`` (section 15), and
    ``h_g1[i] = L'_{2i+1}(tau) G1`` for the Lagrange basis ``L'`` of the 2n-th roots
    (the odd entries of section 12 at size 2n), exactly what snarkjs puts in zkey section 9.
    """

    domain_size: int
    alpha_g1: G1
    beta_g1: G1
    beta_g2: G2
    tau_g1: tuple[G1, ...]
    tau_g2: tuple[G2, ...]
    alpha_tau_g1: tuple[G1, ...]
    beta_tau_g1: tuple[G1, ...]
    h_g1: tuple[G1, ...]


@dataclass(frozen=True, eq=False)
class LagrangeXY:
    """:class:`LagrangeParams` as affine ``x || y`` byte arrays (standard form, 48-byte LE coordinates,
    zeros for the identity: :func:`teeprover.curve.g1s_to_xy` / ``g2s_to_xy`` layout), what setup
    computes on (a point object costs ~200 / 340 bytes, 96 / 192 here).

    ``g1_sources`` holds the 3n G1 points setup indexes: ``beta_tau_g1`` (0 .. n-1), then
    ``alpha_tau_g1`` (n .. 2n-1), then ``tau_g1`` (2n .. 3n-1)."""

    domain_size: int
    alpha_g1: bytes
    beta_g1: bytes
    beta_g2: bytes
    g1_sources: bytes
    tau_g2: bytes
    h_g1: bytes

    @classmethod
    def from_params(cls, params: LagrangeParams) -> LagrangeXY:
        return cls(domain_size=params.domain_size, alpha_g1=curve.g1s_to_xy([params.alpha_g1]),
                   beta_g1=curve.g1s_to_xy([params.beta_g1]), beta_g2=curve.g2s_to_xy([params.beta_g2]),
                   g1_sources=b"".join([curve.g1s_to_xy(params.beta_tau_g1), curve.g1s_to_xy(params.alpha_tau_g1),
                                        curve.g1s_to_xy(params.tau_g1)]),
                   tau_g2=curve.g2s_to_xy(params.tau_g2), h_g1=curve.g1s_to_xy(params.h_g1))


@dataclass(frozen=True)
class Proof:
    a: G1
    b: G2
    c: G1


__all__ = ["Coeff", "VerifyingKey", "ProvingKey", "LagrangeParams", "LagrangeXY", "Proof"]
