"""The one adapter to the native BLS12-381 library (``ark-algebra-py``, arkworks bindings).

Nothing else in the code base imports the native library: everything goes through
the names below.  Points stay native objects (``G1``/``G2``) end to end; scalars
cross into the library as ``Scalar`` objects built from 32 little-endian bytes
(``Scalar(int)`` overflows above 2^63).

Conventions (all chosen to match snarkjs/ffjavascript so keys interoperate):

* Compressed encodings are the zcash/IETF format (48 bytes G1, 96 bytes G2,
  flags in the top three bits, G2 as ``c1 || c0``); decoding checks the point is
  on the curve *and* in the prime-order subgroup, and raises
  :class:`~teeprover.errors.MalformedEncoding` otherwise.
* The n-th root of unity used by :func:`fft`/:func:`ifft` is ffjavascript's:
  ``w_n = 5^((R-1)/n)`` (5 is the smallest quadratic non-residue of Fr).
  arkworks uses ``7^t``; the two domains hold the same points in a different
  order, so we permute in and out of the native FFT (index ``i -> i*j mod n``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import ark_algebra_py as _ark

from teeprover.errors import MalformedEncoding

G1 = _ark.G1
G2 = _ark.G2
GT = _ark.GT
Scalar = _ark.Scalar

# ---------------------------------------------------------------------------
# Constants, checked against the library at import (py_ecc's field_properties style).

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001  # scalar field order
P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB  # base field
TWO_ADICITY = 32
FR_NQR = 5  # smallest quadratic non-residue of Fr: ffjavascript's root of unity generator
G1_GENERATOR_X = 0x17F1D3A73197D7942695638C4FA9AC0FC3688C4F9774B905A14E3A3F171BAC586C55E83FF97A1AEFFB3AF00ADB22C6BB
G1_GENERATOR_Y = 0x08B3F481E3AAA0F1A09E30ED741D8AE4FCF5E095D5D00AF600DB18CB2C04B3EDD03CC744A2888AE40CAA232946C5E7E1
G1_BYTES = 48
G2_BYTES = 96
FR_BYTES = 32

_T = (R - 1) >> TWO_ADICITY


def _check_constants() -> None:
    from teeprover.r1cs import R as R1CS_R

    assert R1CS_R == R, "r1cs.R disagrees with curve.R"
    assert (R - 1) % (1 << TWO_ADICITY) == 0 and _T % 2 == 1
    assert pow(FR_NQR, (R - 1) // 2, R) == R - 1
    assert all(pow(q, (R - 1) // 2, R) == 1 for q in (2, 3, 4))
    # The library's scalar field is R: R-1 encodes, R does not.
    assert Scalar.from_le_bytes((R - 1).to_bytes(32, "little")) == -Scalar.one()
    assert str(G1()) == f"({G1_GENERATOR_X}, {G1_GENERATOR_Y})"
    assert (G1_GENERATOR_Y**2 - G1_GENERATOR_X**3 - 4) % P == 0


# ---------------------------------------------------------------------------
# Scalars


def fr(x: int) -> Scalar:
    """A library scalar from a Python int (reduced mod R)."""
    return Scalar.from_le_bytes((x % R).to_bytes(32, "little"))


def frs(xs: Sequence[int]) -> list[Scalar]:
    fb = Scalar.from_le_bytes
    return [fb((x % R).to_bytes(32, "little")) for x in xs]


def fr_int(s: Scalar) -> int:
    return int(str(s))


def fr_ints(ss: Sequence[Scalar]) -> list[int]:
    return [int(str(s)) for s in ss]


def fr_to_bytes(x: int) -> bytes:
    """32-byte little-endian encoding of a field element."""
    return (x % R).to_bytes(32, "little")


def fr_from_bytes(data: bytes) -> int:
    if len(data) != FR_BYTES:
        raise MalformedEncoding(f"field element must be {FR_BYTES} bytes, got {len(data)}")
    x = int.from_bytes(data, "little")
    if x >= R:
        raise MalformedEncoding("field element is not reduced modulo r")
    return x


def inv(x: int) -> int:
    if x % R == 0:
        raise ZeroDivisionError("inverse of zero in Fr")
    return pow(x, R - 2, R)


# ---------------------------------------------------------------------------
# Points


def g1_generator() -> G1:
    return G1()


def g2_generator() -> G2:
    return G2()


def g1_identity() -> G1:
    return G1.identity()


def g2_identity() -> G2:
    return G2.identity()


def g1_mul(p: G1, k: int) -> G1:
    return p * fr(k)


def g2_mul(p: G2, k: int) -> G2:
    return p * fr(k)


def g1_to_bytes(p: G1) -> bytes:
    return bytes(p.to_compressed_bytes())


def g2_to_bytes(p: G2) -> bytes:
    return bytes(p.to_compressed_bytes())


def _check_canonical(data: bytes, what: str) -> None:
    """Strict zcash flags: compressed bit set; infinity only as 0xc0 00..00; coordinates < p."""
    flags = data[0] & 0xE0
    if not flags & 0x80:
        raise MalformedEncoding(f"{what} point is not in compressed form")
    if flags & 0x40:
        if flags != 0xC0 or any(data[1:]):
            raise MalformedEncoding(f"{what} point at infinity is not canonical")
        return
    for i in range(0, len(data), 48):
        x = int.from_bytes(data[i:i + 48], "big")
        if i == 0:
            x &= (1 << 381) - 1
        if x >= P:
            raise MalformedEncoding(f"{what} coordinate is not reduced modulo p")


def g1_from_bytes(data: bytes, *, check_subgroup: bool = True) -> G1:
    """Decode 48 compressed bytes; raise MalformedEncoding unless on the curve (and in G1)."""
    if not isinstance(data, bytes | bytearray) or len(data) != G1_BYTES:
        raise MalformedEncoding(f"G1 point must be {G1_BYTES} bytes")
    _check_canonical(data, "G1")
    try:
        if check_subgroup:
            return G1.from_compressed_bytes(bytes(data))
        return G1.from_compressed_bytes_unchecked(bytes(data))
    except (ValueError, OverflowError) as exc:
        raise MalformedEncoding("invalid G1 point encoding") from exc


def g2_from_bytes(data: bytes, *, check_subgroup: bool = True) -> G2:
    if not isinstance(data, bytes | bytearray) or len(data) != G2_BYTES:
        raise MalformedEncoding(f"G2 point must be {G2_BYTES} bytes")
    _check_canonical(data, "G2")
    try:
        if check_subgroup:
            return G2.from_compressed_bytes(bytes(data))
        return G2.from_compressed_bytes_unchecked(bytes(data))
    except (ValueError, OverflowError) as exc:
        raise MalformedEncoding("invalid G2 point encoding") from exc


def g1_is_identity(p: G1) -> bool:
    return p == G1.identity()


def g2_is_identity(p: G2) -> bool:
    return p == G2.identity()


# Affine integer coordinates (snarkjs JSON export, .ptau/.zkey files).

Fp2 = tuple[int, int]
_G2_RE = re.compile(r"QuadExtField\((\d+) \+ (\d+) \* u\)")


def g1_to_affine(p: G1) -> tuple[int, int] | None:
    """``(x, y)`` as integers, or ``None`` for the point at infinity."""
    s = str(p)
    if s == "infinity":
        return None
    x, y = s[1:-1].split(", ")
    return int(x), int(y)


def g2_to_affine(p: G2) -> tuple[Fp2, Fp2] | None:
    """``((x_c0, x_c1), (y_c0, y_c1))``, or ``None`` for the point at infinity."""
    s = str(p)
    if s == "infinity":
        return None
    m = _G2_RE.findall(s)
    if len(m) != 2:  # pragma: no cover - library output format changed
        raise RuntimeError("unexpected G2 text form from the curve library")
    (x0, x1), (y0, y1) = m
    return (int(x0), int(x1)), (int(y0), int(y1))


def g1_from_affine(x: int, y: int, *, check_subgroup: bool = True) -> G1:
    """A G1 point from affine coordinates; raises MalformedEncoding if off the curve."""
    if not (0 <= x < P and 0 <= y < P) or (y * y - x * x * x - 4) % P != 0:
        raise MalformedEncoding("G1 point is not on the curve")
    flags = 0x80 | (0x20 if y > (P - 1) // 2 else 0)
    b = bytearray(x.to_bytes(48, "big"))
    b[0] |= flags
    return g1_from_bytes(bytes(b), check_subgroup=check_subgroup)


def _fp2_mul(a: Fp2, b: Fp2) -> Fp2:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def g2_from_affine(x: Fp2, y: Fp2, *, check_subgroup: bool = True) -> G2:
    if not all(0 <= c < P for c in (*x, *y)):
        raise MalformedEncoding("G2 coordinate out of range")
    lhs = _fp2_mul(y, y)
    x3 = _fp2_mul(_fp2_mul(x, x), x)
    if lhs != ((x3[0] + 4) % P, (x3[1] + 4) % P):
        raise MalformedEncoding("G2 point is not on the curve")
    big = y[1] > (P - 1) // 2 if y[1] != 0 else y[0] > (P - 1) // 2
    b = bytearray(x[1].to_bytes(48, "big") + x[0].to_bytes(48, "big"))
    b[0] |= 0x80 | (0x20 if big else 0)
    return g2_from_bytes(bytes(b), check_subgroup=check_subgroup)


# ---------------------------------------------------------------------------
# Multi-scalar multiplication and pairings


def msm_g1(points: Sequence[G1], scalars: Sequence[Scalar]) -> G1:
    """sum(points[i] * scalars[i]); both sequences the same length (library objects)."""
    if len(points) != len(scalars):
        raise ValueError("msm: points and scalars differ in length")
    if not points:
        return G1.identity()
    return G1.msm(points if isinstance(points, list) else list(points),
                  scalars if isinstance(scalars, list) else list(scalars))


def msm_g2(points: Sequence[G2], scalars: Sequence[Scalar]) -> G2:
    if len(points) != len(scalars):
        raise ValueError("msm: points and scalars differ in length")
    if not points:
        return G2.identity()
    return G2.msm(points if isinstance(points, list) else list(points),
                  scalars if isinstance(scalars, list) else list(scalars))


def pairing(p: G1, q: G2) -> GT:
    return _ark.Pairing.pairing(p, q)


def pairing_check(pairs: Sequence[tuple[G1, G2]]) -> bool:
    """True iff prod e(P_i, Q_i) == 1 in GT."""
    g1s = [p for p, _ in pairs]
    g2s = [q for _, q in pairs]
    return bool(_ark.Pairing.multi_pairing(g1s, g2s) == GT.one())


# ---------------------------------------------------------------------------
# FFTs over Fr in ffjavascript's root convention


def root_of_unity(n: int) -> int:
    """ffjavascript's primitive n-th root of unity (n a power of two <= 2^32)."""
    k = n.bit_length() - 1
    if n != 1 << k or k > TWO_ADICITY:
        raise ValueError("domain size must be a power of two <= 2^32")
    return pow(FR_NQR, _T << (TWO_ADICITY - k), R)


def _dlog_pow2(target: int, base: int, k: int) -> int:
    """j with base^j == target, both of order dividing 2^k (Pohlig-Hellman, bit by bit)."""
    j = 0
    for bit in range(k):
        # (target * base^-j)^(2^(k-1-bit)) is 1 or -1
        t = target * pow(base, (R - 1 - j) % (R - 1), R) % R
        if pow(t, 1 << (k - 1 - bit), R) != 1:
            j |= 1 << bit
    assert pow(base, j, R) == target
    return j


class _Domain:
    """Native FFT domain of size n, with the permutations to/from ffjavascript's order."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.native = _ark.Domain(n)
        w_native = fr_int(self.native.element(1)) if n > 1 else 1
        w = root_of_unity(n)
        j = _dlog_pow2(w, w_native, n.bit_length() - 1) if n > 1 else 0
        jinv = pow(j, -1, n) if n > 1 else 0
        # snarkjs index i is the point w^i = w_native^(i*j)
        self.to_snarkjs = [(i * j) % n for i in range(n)]  # out[i] = native[i*j]
        self.to_native = [(m * jinv) % n for m in range(n)]  # native[m] = snark[m*jinv]


@lru_cache(maxsize=32)
def _domain(n: int) -> _Domain:
    return _Domain(n)


_ZERO = Scalar.zero()


def ifft(evals: Sequence[Scalar], n: int | None = None) -> list[Scalar]:
    """Coefficients (length n) of the polynomial with ``p(w^i) = evals[i]`` (ffjavascript w)."""
    n = n or len(evals)
    if len(evals) != n:
        raise ValueError("ifft: wrong number of evaluations")
    d = _domain(n)
    native_order = [evals[m] for m in d.to_native]
    coeffs = d.native.interpolate(native_order).coefficients()
    if len(coeffs) < n:
        coeffs = coeffs + [_ZERO] * (n - len(coeffs))
    return coeffs


def fft(coeffs: Sequence[Scalar], n: int) -> list[Scalar]:
    """Evaluations ``[p(w^i) for i < n]`` of the polynomial with ``coeffs`` (len <= n)."""
    if len(coeffs) > n:
        raise ValueError("fft: more coefficients than the domain size")
    d = _domain(n)
    poly = _ark.Polynomial(list(coeffs))
    if not poly.coefficients():
        return [_ZERO] * n
    out = poly.evaluate_over_domain(d.native)
    return [out[i] for i in d.to_snarkjs]


def powers(base: int, count: int) -> list[Scalar]:
    """[base^0, ..., base^(count-1)] as library scalars."""
    out = []
    acc = 1
    for _ in range(count):
        out.append(acc)
        acc = acc * base % R
    return frs(out)


def scale(coeffs: Sequence[Scalar], pows: Sequence[Scalar]) -> list[Scalar]:
    """coeffs[i] * pows[i]: moves ``p(x)`` to ``p(g x)`` when ``pows`` are powers of g."""
    return [c * p for c, p in zip(coeffs, pows, strict=False)]


_check_constants()

__all__ = [
    "G1", "G2", "GT", "Scalar", "R", "P", "G1_BYTES", "G2_BYTES", "FR_BYTES",
    "fr", "frs", "fr_int", "fr_ints", "fr_to_bytes", "fr_from_bytes", "inv",
    "g1_generator", "g2_generator", "g1_identity", "g2_identity", "g1_mul", "g2_mul",
    "g1_to_bytes", "g2_to_bytes", "g1_from_bytes", "g2_from_bytes", "g1_is_identity", "g2_is_identity",
    "g1_to_affine", "g2_to_affine", "g1_from_affine", "g2_from_affine",
    "msm_g1", "msm_g2", "pairing", "pairing_check",
    "root_of_unity", "ifft", "fft", "powers", "scale",
]
