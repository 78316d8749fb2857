"""Midnight's ``hash_to_curve`` onto Jubjub: the out-of-circuit twin and the R1CS gadget.

Midnight's definition (midnight-ledger ``transient-crypto/src/hash.rs`` calling
midnight-zk's ``HashToCurveGadget`` with Poseidon and the native Jubjub chip,
``circuits/src/ecc/hash_to_curve/``):

* a Poseidon sponge *without* a declared length: the state starts as
  ``[0, 0, 2^64]``, the inputs followed by their count are absorbed two at a time
  (added to state elements 0 and 1, then one permutation per chunk), and two
  squeezes give ``u1 = state[0]`` and ``u2 = state[1]`` of the final state;
* each ``u`` is mapped to the curve by Shallue-van de Woestijne onto a short
  Weierstrass model ``y^2 = x^3 + A x + B`` (``Z = -2``; the root ``y`` is the one
  with the parity of ``u``, parity of the canonical integer), then to Montgomery
  form (``x' = K x - J/3``, ``y' = K y``), then to twisted Edwards
  (``(x'/y', (x'-1)/(x'+1))``, with inversion of 0 giving 0 and then ``y = 1``),
  and the cofactor is cleared (times 8);
* the result is the sum of the two points.

In R1CS the two maps cost 724 constraints each beyond Poseidon, most of it the
two canonical parities (``u`` and ``y``, 344 + 343); the points are added
before clearing the cofactor (``8 M1 + 8 M2 = 8 (M1 + M2)``), 21 constraints.
Whether a value is a square is proved with a square root of it or of ``7`` times
it (``7`` is a non-residue), plus an inverse showing it is non-zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from teeprover.r1cs import R
from teeprover.zkir.gadgets import jubjub, lc, poseidon
from teeprover.zkir.gadgets.jubjub import Point, PointLC, canonical_bits, product, select, witness_canonical_bits
from teeprover.zkir.gadgets.lc import LC, Synth


def _from_limbs(*limbs: int) -> int:
    return sum(limb << (64 * i) for i, limb in enumerate(limbs))


# midnight-zk circuits/src/ecc/hash_to_curve/mtc_params.rs (values of Base::from_raw).
SVDW_Z = _from_limbs(0xFFFFFFFEFFFFFFFF, 0x53BDA402FFFE5BFE, 0x3339D80809A1D805, 0x73EDA753299D7D48)  # -2
WEIERSTRASS_A = _from_limbs(0xC50D34DCD4C20942, 0x20535E745E639334, 0x976220A0378A2328, 0x739E8ACF6E7266E8)
WEIERSTRASS_B = _from_limbs(0x7120C33B4C6628E1, 0xBBF51483FF8366AC, 0xF4C60001B55614B0, 0x6AE5CA3C3F667667)
MONT_J = 0xA002
MONT_K = _from_limbs(0xFFFFFFFEFFFF5FFD, 0x53BDA402FFFE5BFE, 0x3339D80809A1D805, 0x73EDA753299D7D48)
# Poseidon's sponge without a declared length starts its capacity element at 2^64.
SPONGE_CAPACITY_INIT = 1 << 64
NON_RESIDUE = 7  # the multiplicative generator of the field

_TWO_ADICITY = 32
_ODD = (R - 1) >> _TWO_ADICITY


def _g(x: int) -> int:
    return (x * x % R * x + WEIERSTRASS_A * x + WEIERSTRASS_B) % R


def is_square(x: int) -> bool:
    return x % R == 0 or pow(x, (R - 1) // 2, R) == 1


def sqrt(x: int) -> int:
    """A square root of ``x`` (Tonelli-Shanks); ``ValueError`` for a non-residue."""
    x %= R
    if not is_square(x):
        raise ValueError("not a square")
    if x == 0:
        return 0
    m, c = _TWO_ADICITY, pow(NON_RESIDUE, _ODD, R)
    t, root = pow(x, _ODD, R), pow(x, (_ODD + 1) // 2, R)
    while t != 1:
        i, t2 = 0, t
        while t2 != 1:
            t2, i = t2 * t2 % R, i + 1
        b = pow(c, 1 << (m - i - 1), R)
        m, c, t, root = i, b * b % R, t * b * b % R, root * b % R
    return root


def _inv0(x: int) -> int:
    return pow(x, -1, R) if x % R else 0


_DET = (3 * SVDW_Z * SVDW_Z + 4 * WEIERSTRASS_A) % R
C1 = _g(SVDW_Z)
C2 = -SVDW_Z * pow(2, -1, R) % R
C3 = sqrt(-C1 * _DET % R)
C3 = C3 if C3 % 2 == 0 else R - C3  # the even root
C4 = -4 * C1 * pow(_DET, -1, R) % R
_J_THIRD = MONT_J * pow(3, -1, R) % R
assert not is_square(NON_RESIDUE)


# ---------------------------------------------------------------- out-of-circuit twin

def sponge_squeeze_two(inputs: Sequence[int]) -> tuple[int, int]:
    """The two squeezes of Poseidon's variable-length sponge over ``inputs``."""
    state = [0, 0, SPONGE_CAPACITY_INIT]
    queue = [x % R for x in inputs] + [len(inputs) % R]
    for i in range(0, len(queue), poseidon.RATE):
        for j, x in enumerate(queue[i:i + poseidon.RATE]):
            state[j] = (state[j] + x) % R
        state = poseidon.permute(state)
    return state[0], state[1]


def map_to_curve_uncleared(u: int) -> Point:
    """SvdW, then Weierstrass to Montgomery to Edwards (before clearing the cofactor)."""
    tv1 = u * u % R * C1 % R
    tv2 = (1 + tv1) % R
    tv1 = (1 - tv1) % R
    tv3 = _inv0(tv1 * tv2)
    tv4 = u * tv1 % R * tv3 % R * C3 % R
    x1, x2 = (C2 - tv4) % R, (C2 + tv4) % R
    e1 = is_square(_g(x1))
    e2 = is_square(_g(x2)) and not e1
    x3 = (C4 * pow(tv2 * tv2 % R * tv3, 2, R) + SVDW_Z) % R
    x = x1 if e1 else x2 if e2 else x3
    y = sqrt(_g(x))
    if u % R % 2 != y % 2:
        y = -y % R
    xm, ym = (MONT_K * x - _J_THIRD) % R, MONT_K * y % R
    t1 = (xm + 1) % R
    t2 = _inv0(t1 * ym)
    ex = t2 * t1 % R * xm % R
    ey = t2 * ym % R * (xm - 1) % R if t2 else 1
    return ex, ey


def map_to_curve(u: int) -> Point:
    return jubjub.mul_int(map_to_curve_uncleared(u), jubjub.COFACTOR)


def hash_to_curve(inputs: Sequence[int]) -> Point:
    """Midnight's ``hash_to_curve`` of field elements."""
    u1, u2 = sponge_squeeze_two(inputs)
    return jubjub.add(map_to_curve(u1), map_to_curve(u2))


# ---------------------------------------------------------------- in-circuit gadget

def _inv0_lc(s: Synth, x: LC) -> tuple[LC, LC]:
    """``(inv0(x), x != 0)``: ``p = x t``, ``x (1 - p) = 0``, ``t (1 - p) = 0`` (3 constraints)."""
    t = lc.var(s.new_var(lambda: _inv0(s.value(x))))
    p = product(s, x, t)
    s.enforce(x, lc.sub(lc.ONE, p), {})
    s.enforce(t, lc.sub(lc.ONE, p), {})
    return t, p


def _is_square_bit(s: Synth, v: LC) -> LC:
    """A boolean ``e = [v is a square]``: 4 constraints.

    A root of ``v`` (``e = 1``), or a root of ``7 v`` and an inverse of ``v`` (``e = 0``).
    """
    e = lc.var(s.new_var(lambda: int(is_square(s.value(v)))))
    s.enforce_boolean(e)
    scaled = product(s, v, lc.add(lc.const(NON_RESIDUE), lc.scale(e, 1 - NON_RESIDUE)))
    root = lc.var(s.new_var(lambda: sqrt(s.value(scaled))))
    s.enforce(root, root, scaled)
    w = s.new_var(lambda: 0 if s.value(e) else pow(s.value(v), -1, R))
    s.enforce(v, lc.var(w), lc.sub(lc.ONE, e))
    return e


def _cube_plus(s: Synth, x: LC, x_squared: LC) -> LC:
    """``g(x) = x (x^2 + A) + B`` given ``x^2``: one constraint."""
    return lc.add(product(s, x, lc.add(x_squared, lc.const(WEIERSTRASS_A))), lc.const(WEIERSTRASS_B))


def map_to_curve_lc(s: Synth, u: LC) -> PointLC:
    """:func:`map_to_curve_uncleared` of ``u``, exactly (every exceptional case included)."""
    uu = product(s, u, u)
    tv1 = lc.scale(uu, C1)
    tv2 = lc.add(lc.ONE, tv1)
    tv1m = lc.sub(lc.ONE, tv1)
    tv3, _ = _inv0_lc(s, product(s, tv1m, tv2))
    tv4 = product(s, lc.scale(product(s, u, tv1m), C3), tv3)
    x1 = lc.sub(lc.const(C2), tv4)
    x2 = lc.add(lc.const(C2), tv4)
    t2 = product(s, tv4, tv4)
    sq_common = lc.add(lc.const(C2 * C2), t2)
    cross = lc.scale(tv4, 2 * C2)
    gx1 = _cube_plus(s, x1, lc.sub(sq_common, cross))
    gx2 = _cube_plus(s, x2, lc.add(sq_common, cross))
    w = product(s, product(s, tv2, tv2), tv3)
    x3 = lc.add(lc.scale(product(s, w, w), C4), lc.const(SVDW_Z))
    gx3 = _cube_plus(s, x3, product(s, x3, x3))
    e1 = _is_square_bit(s, gx1)
    f2 = _is_square_bit(s, gx2)
    # e1 ? x1 : (gx2 square ? x2 : x3); the inner choice only matters when e1 = 0.
    x = select(s, e1, x1, select(s, f2, x2, x3))
    gx = select(s, e1, gx1, select(s, f2, gx2, gx3))
    # y: the root of gx whose canonical parity is u's (y = 0 whatever u's parity).
    u_bits = canonical_bits(s, u)

    def y_value() -> int:
        y = sqrt(s.value(gx))
        return y if y % 2 == s.z[u_bits[0]] else -y % R

    y_bits = witness_canonical_bits(s, y_value)
    y = lc.weighted_sum(y_bits)
    s.enforce(y, y, gx)
    s.enforce(lc.sub(lc.var(y_bits[0]), lc.var(u_bits[0])), y, {})
    xm = lc.sub(lc.scale(x, MONT_K), lc.const(_J_THIRD))
    ym = lc.scale(y, MONT_K)
    t1 = lc.add(xm, lc.ONE)
    inv, nonzero = _inv0_lc(s, product(s, t1, ym))
    ex = product(s, product(s, inv, t1), xm)
    ey = lc.add(product(s, product(s, inv, ym), lc.sub(xm, lc.ONE)), lc.sub(lc.ONE, nonzero))
    return ex, ey


def sponge_squeeze_two_lc(s: Synth, inputs: Sequence[LC]) -> tuple[LC, LC]:
    state: list[LC] = [{}, {}, lc.const(SPONGE_CAPACITY_INIT)]
    queue = [*inputs, lc.const(len(inputs))]
    for i in range(0, len(queue), poseidon.RATE):
        for j, x in enumerate(queue[i:i + poseidon.RATE]):
            state[j] = lc.add(state[j], x)
        state = poseidon.permute_lc(s, state)
    return state[0], state[1]


def gadget_hash_to_curve(s: Synth, inputs: Sequence[LC]) -> PointLC:
    """``hash_to_curve``: Poseidon, two maps, one addition, the cofactor cleared by three doublings."""
    u1, u2 = sponge_squeeze_two_lc(s, inputs)
    p = jubjub.point_add(s, map_to_curve_lc(s, u1), map_to_curve_lc(s, u2))
    for _ in range(3):
        p = jubjub.point_double(s, p)
    return jubjub.mark_checked(s, p)
