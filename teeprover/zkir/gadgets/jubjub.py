"""Midnight's embedded curve (Jubjub): the out-of-circuit twin and the R1CS gadgets.

The curve is the twisted Edwards curve ``-x^2 + y^2 = 1 + d*x^2*y^2`` over the
BLS12-381 scalar field ``R`` (``a = -1``, ``d = -10240/10241``), of order
``8*Q`` with ``Q`` the prime order of its cryptographic subgroup
(midnight-zk ``curves/src/jubjub``; Midnight's ``transient-crypto/src/curve.rs``
uses the subgroup as ``EmbeddedGroupAffine``).

A point is written as two memory cells ``(x, y)``; the identity is ``(0, 1)``.
Midnight's VM accepts an input point only if it lies on the curve *and* in the
subgroup (``EmbeddedGroupAffine::new`` panics on a point outside it, and the
in-circuit ``assign`` writes the point as 8 times a witnessed cofactor root), so
the gadgets here enforce both.  A scalar is a full field element ``s < R``;
Midnight reduces it modulo ``Q`` before multiplying, which for subgroup points
equals multiplying by the integer ``s``: the gadgets decompose ``s`` into its
canonical 255 bits.  The generator is ``8 * (u, 11)``, the cofactor-cleared
``JubjubAffine::generator()``.

The addition formulas are the complete ones (``a`` a square, ``d`` a
non-square), so no case distinctions are needed in or out of the circuit.
Costs (R1CS constraints): addition 6, doubling 5, on-curve check 3, subgroup
check 16 (skipped for points this module has already produced or checked, and
for valid constant points), variable-base multiplication 3,167, fixed-base
(generator) multiplication 1,103.
"""

from __future__ import annotations

import functools
import itertools
import weakref
from collections.abc import Callable

from teeprover.r1cs import R
from teeprover.zkir.gadgets import lc
from teeprover.zkir.gadgets.lc import LC, Synth

Point = tuple[int, int]
PointLC = tuple[LC, LC]

A = R - 1
D = -10240 * pow(10241, -1, R) % R
# Order of the prime-order subgroup (midnight-zk curves/src/jubjub/fr.rs).
Q = 0x0E7DB4EA6533AFA906673B0101343B00A6682093CCC81082D0970E5ED6F72CB7
COFACTOR = 8
IDENTITY: Point = (0, 1)
# JubjubAffine::generator(): the point with v = 11 and positive u; Midnight's generator is 8 times it.
_BASE: Point = (0x62EDCBB8BF3787C88B0F03DDD60A8187CAF55D1B29BF81AFE4B3D35DF1A7ADFE, 11)
SCALAR_BITS = R.bit_length()  # 255


# ---------------------------------------------------------------- out-of-circuit twin

def on_curve(p: Point) -> bool:
    x, y = p
    if not (0 <= x < R and 0 <= y < R):
        return False
    xx, yy = x * x % R, y * y % R
    return (A * xx + yy - 1 - D * xx % R * yy) % R == 0


def add(p: Point, q: Point) -> Point:
    """Complete twisted Edwards addition (affine)."""
    x1, y1 = p
    x2, y2 = q
    c = D * x1 % R * x2 % R * y1 % R * y2 % R
    return ((x1 * y2 + y1 * x2) * pow(1 + c, -1, R) % R,
            (y1 * y2 - A * x1 * x2) * pow(1 - c, -1, R) % R)


_D2 = 2 * D % R
Extended = tuple[int, int, int, int]  # (X : Y : Z : T) with x = X/Z, y = Y/Z, T = XY/Z


def _ext_add(p: Extended, q: Extended) -> Extended:
    """add-2008-hwcd-3 for a = -1: unified and complete (a square, d not)."""
    X1, Y1, Z1, T1 = p
    X2, Y2, Z2, T2 = q
    a = (Y1 - X1) * (Y2 - X2) % R
    b = (Y1 + X1) * (Y2 + X2) % R
    c = T1 * _D2 % R * T2 % R
    d = 2 * Z1 * Z2 % R
    e, f, g, h = b - a, d - c, d + c, b + a
    return e * f % R, g * h % R, f * g % R, e * h % R


def _ext_double(p: Extended) -> Extended:
    """dbl-2008-hwcd for a = -1."""
    X1, Y1, Z1, _ = p
    a = X1 * X1 % R
    b = Y1 * Y1 % R
    c = 2 * Z1 * Z1 % R
    e = ((X1 + Y1) * (X1 + Y1) - a - b) % R
    g = b - a
    f = g - c
    h = -a - b
    return e * f % R, g * h % R, f * g % R, e * h % R


def mul_int(p: Point, k: int) -> Point:
    """``k * p`` for an integer ``k >= 0``: extended coordinates, 4-bit windows, one inversion at the end."""
    base: Extended = (p[0], p[1], 1, p[0] * p[1] % R)
    table: list[Extended] = [(0, 1, 1, 0), base]
    for _ in range(14):
        table.append(_ext_add(table[-1], base))
    acc: Extended = (0, 1, 1, 0)
    for shift in range((max(k.bit_length(), 1) + 3) // 4 * 4 - 4, -1, -4):
        acc = _ext_double(_ext_double(_ext_double(_ext_double(acc))))
        digit = k >> shift & 15
        if digit:
            acc = _ext_add(acc, table[digit])
    zi = pow(acc[2], -1, R)
    return acc[0] * zi % R, acc[1] * zi % R


@functools.lru_cache(maxsize=4096)
def cofactor_root(p: Point) -> Point:
    """``(8^-1 mod Q) * p``: the point whose eightfold is ``p`` when ``p`` lies in the subgroup."""
    return mul_int(p, pow(COFACTOR, -1, Q))


def in_subgroup(p: Point) -> bool:
    """On the curve and ``8 * root == p``: true exactly for the subgroup, since ``8 * E`` is the subgroup."""
    return on_curve(p) and mul_int(cofactor_root(p), COFACTOR) == p


def point_error(p: Point) -> str | None:
    """Why Midnight's VM refuses ``p`` as an input point, or ``None`` if it accepts it."""
    if not on_curve(p):
        return f"elliptic curve point not on curve: ({p[0]}, {p[1]})"
    if not in_subgroup(p):
        return f"elliptic curve point not in the prime-order subgroup: ({p[0]}, {p[1]})"
    return None


def mul(p: Point, scalar: int) -> Point:
    """Midnight's ``EmbeddedGroupAffine * Fr``: the scalar is reduced modulo ``Q`` first."""
    return mul_int(p, scalar % Q)


GENERATOR: Point = mul_int(_BASE, COFACTOR)


def mul_generator(scalar: int) -> Point:
    """``mul(GENERATOR, scalar)`` by the fixed-base tables the gadget uses (85 additions)."""
    k = scalar % Q
    acc: Extended = (0, 1, 1, 0)
    for j, table in enumerate(generator_tables()):
        x, y = table[k >> (_WINDOW * j) & 7]
        acc = _ext_add(acc, (x, y, 1, x * y % R))
    zi = pow(acc[2], -1, R)
    return acc[0] * zi % R, acc[1] * zi % R


# ---------------------------------------------------------------- small R1CS helpers

def product(s: Synth, a: LC, b: LC) -> LC:
    v = s.new_var(lambda: s.value(a) * s.value(b))
    s.enforce(a, b, lc.var(v))
    return lc.var(v)


def select(s: Synth, bit: LC, a: LC, b: LC) -> LC:
    """``bit ? a : b`` for a boolean ``bit``: one constraint, none if ``a - b`` is constant."""
    diff = lc.sub(a, b)
    k = lc.constant_value(diff)
    if k is not None:
        return lc.add(b, lc.scale(bit, k))
    return lc.add(b, product(s, bit, diff))


def select_point(s: Synth, bit: LC, p: PointLC, q: PointLC) -> PointLC:
    return select(s, bit, p[0], q[0]), select(s, bit, p[1], q[1])


def const_point(p: Point) -> PointLC:
    return lc.const(p[0]), lc.const(p[1])


def bits_le_constant(s: Synth, bits: list[int], c: int) -> None:
    """Enforce ``sum 2^i * bits[i] <= c`` for boolean ``bits`` (little-endian) and a constant ``c``.

    Scanning from the top, ``eq`` is 1 while the bits so far equal those of ``c``.
    Over a run of zeros of ``c`` the bits must be 0 while ``eq`` holds:
    ``eq * sum(run) = 0``.  Over a run of ones ``eq`` must stay 1 if every bit is
    1: with ``d = len - sum(run)``, ``d * w = eq - eq'`` (``d = 0`` forces
    ``eq' = eq``).  That is one-sided: when ``d != 0`` the prover may put any
    ``eq'``, but a non-zero one only forces more bits to 0, so the bound holds
    (honest provers put 0).  One constraint per run: 88 for ``c = R - 1``
    instead of one or two per bit.
    """
    n = len(bits)
    assert c < 1 << n
    runs = [(bit, [n - 1 - i for i, _ in group])
            for bit, group in itertools.groupby(enumerate(reversed([c >> i & 1 for i in range(n)])),
                                                key=lambda t: t[1])]
    eq: LC = lc.ONE
    for r, (c_bit, positions) in enumerate(runs):
        run_sum: LC = {bits[p]: 1 for p in positions}
        if not c_bit:
            s.enforce(eq, run_sum, {})
        elif r < len(runs) - 1:  # nothing is below the last run of ones
            eq = _still_equal(s, eq, lc.sub(lc.const(len(positions)), run_sum))


def _still_equal(s: Synth, eq: LC, d: LC) -> LC:
    """``eq'`` with ``d * w = eq - eq'``: ``eq' = eq`` when ``d = 0``; the prover puts 0 otherwise."""
    eq_v = s.value(eq) if s.proving else 0
    d_v = s.value(d) if s.proving else 0
    eq_new = lc.var(s.new_var(0 if d_v else eq_v))
    w = s.new_var(eq_v * pow(d_v, -1, R) if d_v else 0)
    s.enforce(d, lc.var(w), lc.sub(eq, eq_new))
    return eq_new


def witness_canonical_bits(s: Synth, value: Callable[[], int]) -> list[int]:
    """255 boolean variables holding a witnessed value's canonical integer (``< R``): 343 constraints."""
    v = value() if s.proving else 0
    bits = [s.new_var(v >> i & 1) for i in range(SCALAR_BITS)]
    for b in bits:
        s.enforce_boolean(lc.var(b))
    bits_le_constant(s, bits, R - 1)
    return bits


def canonical_bits(s: Synth, x: LC) -> list[int]:
    """The 255 little-endian bits of ``x``'s canonical integer: 344 constraints."""
    bits = witness_canonical_bits(s, lambda: s.value(x))
    s.enforce(lc.weighted_sum(bits), lc.ONE, x)
    return bits


# ---------------------------------------------------------------- point gadgets

def _values(s: Synth, *xs: LC) -> list[int]:
    return [s.value(x) for x in xs] if s.proving else [0] * len(xs)


def _var(s: Synth, value: int) -> LC:
    return lc.var(s.new_var(value % R))


def _inv(x: int) -> int:
    return pow(x, -1, R) if x % R else 0


def point_add(s: Synth, p: PointLC, q: PointLC, result: Point | None = None) -> PointLC:
    """Complete addition, 6 constraints (the Sapling form, with ``a = -1``).

    ``result`` (prove mode, optional) is the sum's value when the caller already has it.
    """
    (x1, y1), (x2, y2) = p, q
    x1v, y1v, x2v, y2v = _values(s, x1, y1, x2, y2)
    av, bv = x1v * y2v % R, y1v * x2v % R
    tv = (x1v + y1v) * (x2v + y2v) % R
    cv = D * av % R * bv % R
    t = _var(s, tv)
    s.enforce(lc.add(x1, y1), lc.add(x2, y2), t)  # x1x2 + x1y2 + y1x2 + y1y2
    a = _var(s, av)
    s.enforce(x1, y2, a)
    b = _var(s, bv)
    s.enforce(y1, x2, b)
    c = _var(s, cv)
    s.enforce(lc.scale(a, D), b, c)  # d x1 x2 y1 y2
    if result is None and s.proving:
        result = (av + bv) * _inv(1 + cv) % R, (tv - av - bv) * _inv(1 - cv) % R
    x3v, y3v = result or (0, 0)
    x3 = _var(s, x3v)
    s.enforce(x3, lc.add(lc.ONE, c), lc.add(a, b))
    y3 = _var(s, y3v)
    s.enforce(y3, lc.sub(lc.ONE, c), lc.sub(lc.sub(t, a), b))  # y1y2 + x1x2 = y1y2 - a x1x2
    return x3, y3


def point_double(s: Synth, p: PointLC, squares: tuple[LC, LC] | None = None,
                 out: PointLC | None = None, result: Point | None = None) -> PointLC:
    """``2p`` for a point known to be on the curve: 5 constraints, 3 given ``(x^2, y^2)``.

    On the curve ``1 + d x^2 y^2 = y^2 - x^2``, so ``x' = 2xy / (y^2 - x^2)`` and
    ``y' = (y^2 + x^2) / (2 - y^2 + x^2)``; both denominators are non-zero for
    every curve point.  With ``out`` the result is constrained to equal ``out``;
    ``result`` (prove mode, optional) is its value when the caller already has it.
    """
    x, y = p
    xv, yv = _values(s, x, y)
    if squares is None:
        xx, yy = _var(s, xv * xv), _var(s, yv * yv)
        s.enforce(x, x, xx)
        s.enforce(y, y, yy)
    else:
        xx, yy = squares
    xy = _var(s, xv * yv)
    s.enforce(x, y, xy)
    den_x = lc.sub(yy, xx)
    den_y = lc.sub(lc.add(lc.const(2), xx), yy)
    num_y = lc.add(yy, xx)
    if out is not None:
        s.enforce(out[0], den_x, lc.scale(xy, 2))
        s.enforce(out[1], den_y, num_y)
        return out
    if result is None and s.proving:
        xxv, yyv = xv * xv % R, yv * yv % R
        result = 2 * xv * yv * _inv(yyv - xxv) % R, (yyv + xxv) * _inv(2 + xxv - yyv) % R
    x2v, y2v = result or (0, 0)
    x2 = _var(s, x2v)
    s.enforce(x2, den_x, lc.scale(xy, 2))
    y2 = _var(s, y2v)
    s.enforce(y2, den_y, num_y)
    return x2, y2


def assert_on_curve(s: Synth, p: PointLC) -> tuple[LC, LC]:
    """``-x^2 + y^2 = 1 + d x^2 y^2``: 3 constraints; returns ``(x^2, y^2)``."""
    x, y = p
    xx, yy = product(s, x, x), product(s, y, y)
    s.enforce(lc.scale(xx, D), yy, lc.sub(lc.sub(yy, xx), lc.ONE))
    return xx, yy


def assert_in_subgroup(s: Synth, p: PointLC) -> None:
    """``p = 8 * root`` for a witnessed curve point ``root`` (as midnight-zk's ``assign``): 16 constraints.

    ``8 * E`` is exactly the prime-order subgroup, and it implies ``p`` is on the
    curve.  In prove mode the caller has checked ``p`` (:func:`point_error`).
    """
    root_value: list[Point] = []

    def root(i: int) -> int:
        if not root_value:
            root_value.append(cofactor_root((s.value(p[0]), s.value(p[1]))))
        return root_value[0][i]

    r = lc.var(s.new_var(lambda: root(0))), lc.var(s.new_var(lambda: root(1)))
    r2 = point_double(s, r, assert_on_curve(s, r))
    r4 = point_double(s, r2)
    point_double(s, r4, out=p)


# Points (as LC pairs) already constrained to the subgroup in each constraint system.
_CHECKED: weakref.WeakKeyDictionary[Synth, set[tuple[tuple[tuple[int, int], ...], ...]]] = \
    weakref.WeakKeyDictionary()


def _key(p: PointLC) -> tuple[tuple[tuple[int, int], ...], ...]:
    return tuple(sorted(p[0].items())), tuple(sorted(p[1].items()))


def mark_checked(s: Synth, p: PointLC) -> PointLC:
    """Record that ``p`` is a subgroup point by construction (an output of these gadgets)."""
    _CHECKED.setdefault(s, set()).add(_key(p))
    return p


def assert_point(s: Synth, p: PointLC) -> None:
    """Constrain an input point to the subgroup, unless that is already known.

    Known: a point this module produced or checked before in the same system,
    or a constant point that is valid (checked here, at synthesis time).  The
    decision depends only on the LCs, never on values, so both modes agree.
    """
    cx, cy = lc.constant_value(p[0]), lc.constant_value(p[1])
    if cx is not None and cy is not None and in_subgroup((cx, cy)):
        return
    if _key(p) in _CHECKED.get(s, set()):
        return
    assert_in_subgroup(s, p)
    mark_checked(s, p)


def gadget_add(s: Synth, p: PointLC, q: PointLC) -> PointLC:
    """``ec_add``: both inputs checked into the subgroup (unless known), then one complete addition."""
    assert_point(s, p)
    assert_point(s, q)
    return mark_checked(s, point_add(s, p, q))


def gadget_mul(s: Synth, p: PointLC, scalar: LC) -> PointLC:
    """``ec_mul``: ``scalar * p`` by 2-bit windows over the scalar's canonical bits, most significant first.

    Table ``[O, p, 2p, 3p]`` (11 constraints); per window two doublings, a
    lookup (three point selects, 6) and an addition: 22 constraints.
    """
    assert_point(s, p)
    bits = [lc.var(b) for b in canonical_bits(s, scalar)]
    ident = const_point(IDENTITY)
    p2 = point_double(s, p)
    p3 = point_add(s, p2, p)
    trace = iter(_mul_trace(s.value(p[0]), s.value(p[1]), s.value(scalar)) if s.proving else ())
    acc = select_point(s, bits[-1], p, ident)  # the top bit alone (255 is odd)
    for i in range(SCALAR_BITS - 2, 0, -2):
        hi, lo = bits[i], bits[i - 1]
        acc = point_double(s, point_double(s, acc, result=next(trace, None)), result=next(trace, None))
        even = select_point(s, hi, p2, ident)
        odd = select_point(s, hi, p3, p)
        acc = point_add(s, acc, select_point(s, lo, odd, even), result=next(trace, None))
    return mark_checked(s, acc)


def _normalize(points: list[Extended]) -> list[Point]:
    """Affine values of many extended points with one inversion (Montgomery's trick)."""
    prefix = [1]
    for pt in points:
        prefix.append(prefix[-1] * pt[2] % R)
    inv = pow(prefix[-1], -1, R)
    out: list[Point] = [IDENTITY] * len(points)
    for i in range(len(points) - 1, -1, -1):
        zi = inv * prefix[i] % R
        inv = inv * points[i][2] % R
        out[i] = points[i][0] * zi % R, points[i][1] * zi % R
    return out


def _mul_trace(x: int, y: int, k: int) -> list[Point]:
    """The values :func:`gadget_mul` computes, in order: per window ``2 acc``, ``4 acc``, ``4 acc + digit p``."""
    base: Extended = (x, y, 1, x * y % R)
    table = [(0, 1, 1, 0), base]
    for _ in range(2):
        table.append(_ext_add(table[-1], base))
    acc = table[k >> (SCALAR_BITS - 1) & 1]
    out: list[Extended] = []
    for i in range(SCALAR_BITS - 2, 0, -2):
        acc = _ext_double(acc)
        out.append(acc)
        acc = _ext_double(acc)
        out.append(acc)
        acc = _ext_add(acc, table[k >> (i - 1) & 3])
        out.append(acc)
    return _normalize(out)


_WINDOW = 3


@functools.cache
def generator_tables() -> tuple[tuple[Point, ...], ...]:
    """For each 3-bit window ``j`` of the scalar: ``k * 8^j * G`` for ``k = 0..7``."""
    tables = []
    base = GENERATOR
    for _ in range(SCALAR_BITS // _WINDOW):
        row = [IDENTITY, base]
        for _k in range(2, 1 << _WINDOW):
            row.append(add(row[-1], base))
        tables.append(tuple(row))
        base = add(row[-1], base)  # 8 * base
    return tuple(tables)


def _lookup3(s: Synth, b0: LC, b1: LC, b2: LC, table: tuple[Point, ...]) -> PointLC:
    """``table[b0 + 2 b1 + 4 b2]`` over constant points: 3 constraints (``b0 b1``, then one select per coordinate)."""
    b01 = product(s, b0, b1)
    out = []
    for c in range(2):
        halves = []
        for h in range(2):
            e00, e10, e01, e11 = (table[4 * h + k][c] for k in range(4))
            halves.append(lc.add(lc.add(lc.const(e00), lc.scale(b0, e10 - e00)),
                                 lc.add(lc.scale(b1, e01 - e00), lc.scale(b01, e11 - e10 - e01 + e00))))
        out.append(select(s, b2, halves[1], halves[0]))
    return out[0], out[1]


def gadget_mul_generator(s: Synth, scalar: LC) -> PointLC:
    """``ec_mul_generator``: fixed-base 3-bit windows over constant tables (3 + 6 constraints per window)."""
    bits = [lc.var(b) for b in canonical_bits(s, scalar)]
    tables = generator_tables()
    sums: list[Point] = []
    if s.proving:  # the running sums, normalized with one inversion
        k, ext = s.value(scalar), [(0, 1, 1, 0)]
        for j, table in enumerate(tables):
            x, y = table[k >> (_WINDOW * j) & 7]
            ext.append(_ext_add(ext[-1], (x, y, 1, x * y % R)))
        sums = _normalize(ext[2:])
    acc: PointLC | None = None
    for j, table in enumerate(tables):
        b0, b1, b2 = bits[_WINDOW * j:_WINDOW * j + _WINDOW]
        term = _lookup3(s, b0, b1, b2, table)
        acc = term if acc is None else point_add(s, acc, term, result=sums[j - 1] if sums else None)
    assert acc is not None
    return mark_checked(s, acc)
