"""The one adapter to the native BLS12-381 libraries (arkworks bindings).

Nothing else in the code base imports a native curve library: everything goes
through the names below.  Two bindings of the same arkworks code are used, each
for what only it does well (measurements in ``docs/adr-0001-curve-library.md``):

* **Points** (``G1``/``G2``) are ``py-arkworks-bls12381`` objects: it loads and
  stores affine ``x || y`` coordinates in ~1 us per point (no square root), which
  is what makes a 2^16 proving key load in a fraction of a second; its MSM runs on
  one core and releases the GIL, so the prover runs several MSMs at once.
* **Field elements** (``Scalar``) and **pairings** (``GT``) are ``ark-algebra-py``
  objects (the prover's FFTs are not: they run on 32-byte vectors in our own C,
  see :func:`witness_map`).  Scalars cross into either library as 32 little-endian bytes (``Scalar(int)``
  overflows above 2^63 in both).  MSM scalars are opaque values from
  :func:`msm_scalars` / :func:`msm_scalars_from_fr`; :func:`msm_g1` also takes
  ``Scalar`` lists and converts them.

Conventions (all chosen to match snarkjs/ffjavascript so keys interoperate):

* Compressed encodings are the zcash/IETF format (48 bytes G1, 96 bytes G2,
  flags in the top three bits, G2 as ``c1 || c0``); decoding checks the point is
  on the curve *and* in the prime-order subgroup, and raises
  :class:`~teeprover.errors.MalformedEncoding` otherwise.
* Uncompressed bulk encodings (:func:`g1s_to_xy`/:func:`g1s_from_xy`) are affine
  ``x || y``, each coordinate 48 bytes little endian in standard (not Montgomery)
  form, G2 coordinates ``c0 || c1``; the identity is all zeros.  Decoding always
  checks the curve equation (native, ~1 us); the subgroup check is optional.
* The n-th root of unity of the witness map's NTTs is
  ffjavascript's: ``w_n = 5^((R-1)/n)`` (5 is the smallest quadratic non-residue of
  Fr).  arkworks uses ``7^t`` (the same points in another order), so the NTTs are
  our own (``teeprover/_native.c``), on 32-byte vectors (:func:`witness_map`).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any, TypeAlias

import ark_algebra_py as _ark
import py_arkworks_bls12381 as _pya

from teeprover import _native
from teeprover.errors import MalformedEncoding

G1 = _pya.G1Point
G2 = _pya.G2Point
MsmScalar = _pya.Scalar
# ark-algebra-py ships no type information: for mypy its classes are ``Any`` (explicit aliases, so they
# are valid in annotations); at run time they are the library classes.
if TYPE_CHECKING:
    GT: TypeAlias = Any
    Scalar: TypeAlias = Any
else:
    GT = _ark.GT
    Scalar = _ark.Scalar

# ---------------------------------------------------------------------------
# Constants, checked against the libraries at import (py_ecc's field_properties style).

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001  # scalar field order
P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB  # base field
TWO_ADICITY = 32
FR_NQR = 5  # smallest quadratic non-residue of Fr: ffjavascript's root of unity generator
G1_GENERATOR_X = 0x17F1D3A73197D7942695638C4FA9AC0FC3688C4F9774B905A14E3A3F171BAC586C55E83FF97A1AEFFB3AF00ADB22C6BB
G1_GENERATOR_Y = 0x08B3F481E3AAA0F1A09E30ED741D8AE4FCF5E095D5D00AF600DB18CB2C04B3EDD03CC744A2888AE40CAA232946C5E7E1
G1_BYTES = 48
G2_BYTES = 96
G1_XY_BYTES = 96
G2_XY_BYTES = 192
FR_BYTES = 32

_T = (R - 1) >> TWO_ADICITY


def _check_constants() -> None:
    from teeprover.r1cs import R as R1CS_R

    assert R1CS_R == R, "r1cs.R disagrees with curve.R"
    assert (R - 1) % (1 << TWO_ADICITY) == 0 and _T % 2 == 1
    assert pow(FR_NQR, (R - 1) // 2, R) == R - 1
    assert all(pow(q, (R - 1) // 2, R) == 1 for q in (2, 3, 4))
    # Both libraries' scalar fields are R: R-1 encodes, R does not.
    assert Scalar.from_le_bytes((R - 1).to_bytes(32, "little")) == -Scalar.one()
    assert int(MsmScalar.from_le_bytes((R - 1).to_bytes(32, "little"))) == R - 1
    assert g1_to_affine(G1()) == (G1_GENERATOR_X, G1_GENERATOR_Y)
    assert (G1_GENERATOR_Y**2 - G1_GENERATOR_X**3 - 4) % P == 0
    # The two bindings agree on the generators (same compressed bytes).
    assert bytes(_ark.G1().to_compressed_bytes()) == g1_to_bytes(G1())
    assert bytes(_ark.G2().to_compressed_bytes()) == g2_to_bytes(G2())
    # The fast key path relies on these: all-zero affine bytes are the identity, both ways.
    assert G1.from_xy_bytes_unchecked_le(bytes(G1_XY_BYTES)) == G1.identity()
    assert G2.from_xy_bytes_unchecked_le(bytes(G2_XY_BYTES)) == G2.identity()
    assert g1s_to_xy([G1.identity()]) == bytes(G1_XY_BYTES) and g2s_to_xy([G2.identity()]) == bytes(G2_XY_BYTES)
    # GLV: lambda is a non-trivial cube root of unity mod R, beta one of Fp, phi(G) = lambda G.
    assert (GLV_LAMBDA * GLV_LAMBDA + GLV_LAMBDA + 1) % R == 0 and pow(GLV_BETA, 3, P) == 1 != GLV_BETA
    assert g1_to_affine(g1_mul(G1(), GLV_LAMBDA)) == (GLV_BETA * G1_GENERATOR_X % P, G1_GENERATOR_Y)


# ---------------------------------------------------------------------------
# Scalars


def fr(x: int) -> Scalar:
    """A library (FFT) scalar from a Python int (reduced mod R)."""
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


def _ms(x: int) -> MsmScalar:
    return MsmScalar.from_le_bytes((x % R).to_bytes(32, "little"))


def msm_scalars(xs: Sequence[int]) -> list[MsmScalar]:
    """MSM scalars from Python ints (reduced mod R here)."""
    fb = MsmScalar.from_le_bytes
    return [fb((x % R).to_bytes(32, "little")) for x in xs]


def msm_scalars_from_fr(ss: Sequence[Scalar]) -> list[MsmScalar]:
    """MSM scalars from FFT scalars (32 LE bytes each way, no Python ints)."""
    fb = MsmScalar.from_le_bytes
    return [fb(s.to_le_bytes()) for s in ss]


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
    return p * _ms(k)


def g2_mul(p: G2, k: int) -> G2:
    return p * _ms(k)


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


def _from_compressed(data: bytes, size: int, what: str, group: Any, check_subgroup: bool) -> Any:
    if not isinstance(data, bytes | bytearray) or len(data) != size:
        raise MalformedEncoding(f"{what} point must be {size} bytes")
    _check_canonical(data, what)
    try:
        if check_subgroup:
            return group.from_compressed_bytes(bytes(data))
        return group.from_compressed_bytes_unchecked(bytes(data))
    except (ValueError, OverflowError) as exc:
        raise MalformedEncoding(f"invalid {what} point encoding") from exc


def g1_from_bytes(data: bytes, *, check_subgroup: bool = True) -> G1:
    """Decode 48 compressed bytes; raise MalformedEncoding unless on the curve (and in G1)."""
    point: G1 = _from_compressed(data, G1_BYTES, "G1", G1, check_subgroup)
    return point


def g2_from_bytes(data: bytes, *, check_subgroup: bool = True) -> G2:
    """Decode 96 compressed bytes; raise MalformedEncoding unless on the curve (and in G2)."""
    point: G2 = _from_compressed(data, G2_BYTES, "G2", G2, check_subgroup)
    return point


_G1_ID = G1.identity()
_G2_ID = G2.identity()


def g1_is_identity(p: G1) -> bool:
    return p == _G1_ID


def g2_is_identity(p: G2) -> bool:
    return p == _G2_ID


# Affine coordinates: snarkjs JSON export, .ptau/.zkey files, the fast key-store form.

Fp2 = tuple[int, int]
_Q_MASK = (1 << 384) - 1


def g1_to_affine(p: G1) -> tuple[int, int] | None:
    """``(x, y)`` as integers, or ``None`` for the point at infinity."""
    if p == _G1_ID:
        return None
    v = int.from_bytes(p.to_xy_bytes_le(), "little")
    return v & _Q_MASK, v >> 384


def g2_to_affine(p: G2) -> tuple[Fp2, Fp2] | None:
    """``((x_c0, x_c1), (y_c0, y_c1))``, or ``None`` for the point at infinity."""
    if p == _G2_ID:
        return None
    v = int.from_bytes(p.to_xy_bytes_le(), "little")
    m = _Q_MASK
    return (v & m, (v >> 384) & m), ((v >> 768) & m, v >> 1152)


def _xy_g1(data: bytes, check_subgroup: bool) -> G1:
    try:
        if check_subgroup:
            return G1.from_xy_bytes_le(data)
        return G1.from_xy_bytes_unchecked_le(data)
    except (ValueError, OverflowError) as exc:
        raise MalformedEncoding("G1 point is not on the curve or not in G1") from exc


def _xy_g2(data: bytes, check_subgroup: bool) -> G2:
    try:
        if check_subgroup:
            return G2.from_xy_bytes_le(data)
        return G2.from_xy_bytes_unchecked_le(data)
    except (ValueError, OverflowError) as exc:
        raise MalformedEncoding("G2 point is not on the curve or not in G2") from exc


def g1_from_affine(x: int, y: int, *, check_subgroup: bool = True) -> G1:
    """A G1 point from affine coordinates; raises MalformedEncoding if off the curve."""
    if not (0 <= x < P and 0 <= y < P) or (y * y - x * x * x - 4) % P != 0:
        raise MalformedEncoding("G1 point is not on the curve")
    return _xy_g1(x.to_bytes(48, "little") + y.to_bytes(48, "little"), check_subgroup)


def _fp2_mul(a: Fp2, b: Fp2) -> Fp2:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def g2_from_affine(x: Fp2, y: Fp2, *, check_subgroup: bool = True) -> G2:
    if not all(0 <= c < P for c in (*x, *y)):
        raise MalformedEncoding("G2 coordinate out of range")
    lhs = _fp2_mul(y, y)
    x3 = _fp2_mul(_fp2_mul(x, x), x)
    if lhs != ((x3[0] + 4) % P, (x3[1] + 4) % P):
        raise MalformedEncoding("G2 point is not on the curve")
    return _xy_g2(b"".join(c.to_bytes(48, "little") for c in (*x, *y)), check_subgroup)


def _from_xy_many(data: bytes | bytearray | memoryview, size: int, what: str,
                  make: Any, ident: Any, zeros_ok: bool) -> tuple[Any, ...]:
    if len(data) % size:
        raise MalformedEncoding(f"{what} points: length is not a multiple of {size}")
    raw = bytes(data)
    try:
        if zeros_ok:  # the unchecked constructors read all zeros as the identity themselves
            return tuple(map(make, [raw[i:i + size] for i in range(0, len(raw), size)]))
        zero = bytes(size)
        return tuple(ident if raw[i:i + size] == zero else make(raw[i:i + size]) for i in range(0, len(raw), size))
    except (ValueError, OverflowError) as exc:
        raise MalformedEncoding(f"{what} point is not on the curve or not in the subgroup") from exc


def g1s_from_xy(data: bytes | bytearray | memoryview, *, check_subgroup: bool = True) -> tuple[G1, ...]:
    """G1 points from concatenated 96-byte affine ``x || y`` (LE, standard form; zeros = identity).

    The curve equation is always checked (natively, ~1 us a point); the subgroup
    check (~70 us a point) only with ``check_subgroup``.
    """
    make = G1.from_xy_bytes_le if check_subgroup else G1.from_xy_bytes_unchecked_le
    return _from_xy_many(data, G1_XY_BYTES, "G1", make, _G1_ID, not check_subgroup)


def g2s_from_xy(data: bytes | bytearray | memoryview, *, check_subgroup: bool = True) -> tuple[G2, ...]:
    """G2 points from concatenated 192-byte affine ``x.c0 || x.c1 || y.c0 || y.c1`` (see g1s_from_xy)."""
    make = G2.from_xy_bytes_le if check_subgroup else G2.from_xy_bytes_unchecked_le
    return _from_xy_many(data, G2_XY_BYTES, "G2", make, _G2_ID, not check_subgroup)


def fq_from_montgomery(data: bytes | bytearray | memoryview, what: str = "") -> bytes:
    """48-byte little-endian base-field elements in Montgomery form (``x * 2^384 mod p``, as
    ffjavascript / snarkjs store them) -> the same elements in standard form.  Each must be < p.

    Native (``teeprover/_native.c``, GIL released): neither curve library reads Montgomery form,
    and doing it in Python costs ~1.4 us per coordinate (~1.1 s for a 2^16 key) against ~0.1 us here.
    """
    try:
        return _native.from_montgomery(data)
    except ValueError as exc:
        raise MalformedEncoding(f"{what + ' ' if what else ''}{exc}") from None


def zero_chunks(data: bytes, size: int) -> list[int]:
    """Indices of the all-zero ``size``-byte chunks of ``data`` (the identity points of an affine
    ``x || y`` array), found by C-speed searches rather than a Python test per point."""
    zero = bytes(size)
    out = []
    i = data.find(zero)
    while i != -1:
        if i % size == 0:
            out.append(i // size)
            i = data.find(zero, i + size)
        else:
            i = data.find(zero, i - i % size + size)
    return out


def g1s_from_montgomery(data: bytes | bytearray | memoryview) -> tuple[G1, ...]:
    """:func:`g1s_from_xy` (no subgroup check) of Montgomery-form coordinates (snarkjs ``.zkey`` /
    ``.ptau`` points): each coordinate must be < p (checked), the curve equation is checked by the
    native constructor, all zeros stay the identity."""
    return g1s_from_xy(fq_from_montgomery(data, "G1"), check_subgroup=False)


def g2s_from_montgomery(data: bytes | bytearray | memoryview) -> tuple[G2, ...]:
    """:func:`g2s_from_xy` (no subgroup check) of Montgomery-form coordinates (see g1s_from_montgomery)."""
    return g2s_from_xy(fq_from_montgomery(data, "G2"), check_subgroup=False)


def g1s_to_xy(points: Sequence[G1]) -> bytes:
    """Inverse of :func:`g1s_from_xy` (a point that is not affine yet costs one inversion)."""
    return b"".join([p.to_xy_bytes_le() for p in points])


def g2s_to_xy(points: Sequence[G2]) -> bytes:
    return b"".join([p.to_xy_bytes_le() for p in points])


# ---------------------------------------------------------------------------
# Multi-scalar multiplication and pairings


def _msm_scalars(scalars: Sequence[Any]) -> list[MsmScalar]:
    if scalars and not isinstance(scalars[0], MsmScalar):
        return msm_scalars_from_fr(scalars)
    return scalars if isinstance(scalars, list) else list(scalars)


def msm_g1(points: Sequence[G1], scalars: Sequence[Any]) -> G1:
    """sum(points[i] * scalars[i]); scalars are ``Scalar`` or :func:`msm_scalars` values.

    Runs on one core and releases the GIL: call it from several threads to use more.
    """
    if len(points) != len(scalars):
        raise ValueError("msm: points and scalars differ in length")
    if not points:
        return G1.identity()
    return G1.multiexp_unchecked(points if isinstance(points, list) else list(points), _msm_scalars(scalars))


def msm_g2(points: Sequence[G2], scalars: Sequence[Any]) -> G2:
    if len(points) != len(scalars):
        raise ValueError("msm: points and scalars differ in length")
    if not points:
        return G2.identity()
    return G2.multiexp_unchecked(points if isinstance(points, list) else list(points), _msm_scalars(scalars))


# GLV on G1 (teeprover/_native.c, g1_scale): phi(x, y) = (beta x, y) is lambda * P on G1, with
# lambda = z^2 - 1 for the curve parameter z, a root of lambda^2 + lambda + 1 mod R, and beta the cube
# root of unity of Fp that goes with it (the other one, beta^2, goes with lambda^2).  The C code holds
# its own copy of beta: _check_constants and tests/unit/test_native_scale.py tie the two together.
BLS_Z = -0xD201000000010000
GLV_LAMBDA = BLS_Z * BLS_Z - 1
GLV_BETA = 0x1A0111EA397FE699EC02408663D4DE85AA0D857D89759AD4897D29650FB85F9B409427EB4F49FFFD8BFD00000000AAAC


def glv_split(k: int) -> tuple[int, int]:
    """``(k1, k2)`` with ``k = k1 + k2 * GLV_LAMBDA (mod R)``, both below 2^128 (``k`` reduced mod R first)."""
    k %= R
    return k % GLV_LAMBDA, k // GLV_LAMBDA


def g1_scale_all_xy(data: bytes | bytearray | memoryview, k: int, *, montgomery: bool = False,
                    threads: int | None = None) -> bytes:
    """Affine G1 points (:func:`g1s_to_xy` layout, zeros for the identity) each times ``k``, as affine
    bytes in the same layout (coordinates in Montgomery form with ``montgomery``, the .zkey layout).

    Native (``teeprover/_native.c``: GLV split of ``k``, one joint width-5 NAF chain shared by every
    point, batch inversions), GIL released, split over ``threads`` threads (default: one a core).
    The points must be in G1 (the endomorphism's eigenvalue is only lambda there); each coordinate
    must be reduced (MalformedEncoding otherwise)."""
    if len(data) % G1_XY_BYTES:
        raise MalformedEncoding(f"G1 points: length is not a multiple of {G1_XY_BYTES}")
    k1, k2 = glv_split(k)
    b1, b2 = k1.to_bytes(16, "little"), k2.to_bytes(16, "little")
    view = memoryview(data).cast("B")

    def run(start: int) -> bytes:
        try:
            out: bytes = _native.g1_scale(view[start:start + _SCALE_CHUNK * G1_XY_BYTES], b1, b2, montgomery)
        except ValueError as exc:
            raise MalformedEncoding(str(exc)) from None
        return out

    starts = range(0, len(view), _SCALE_CHUNK * G1_XY_BYTES)
    if len(starts) <= 1:
        return run(0) if len(view) else b""
    workers = threads if threads is not None else min(os.cpu_count() or 1, 8)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # the native loop drops the GIL
        return b"".join(pool.map(run, starts))


_SCALE_CHUNK = 1 << 13  # points per native call: the threads share the work in these pieces


def _sums_xy(group: int, points: bytes | bytearray | memoryview, terms: Sequence[int], counts: Sequence[int],
             montgomery: bool, threads: int | None) -> bytes:
    t, c = array("i", terms), array("i", counts)
    if sum(c) != len(t) or min(c, default=0) < 0:
        raise MalformedEncoding(f"G{group} sums: counts do not add up to the terms")
    offsets = [0, *accumulate(c)]
    view = memoryview(points).cast("B")

    def run(start: int) -> bytes:
        stop = min(start + _SCALE_CHUNK, len(c))
        try:
            out: bytes = _native.sums(group, view, t[offsets[start]:offsets[stop]], c[start:stop], montgomery)
        except ValueError as exc:
            raise MalformedEncoding(f"G{group} {exc}") from None
        return out

    starts = range(0, len(c), _SCALE_CHUNK)
    if len(starts) <= 1:
        return run(0) if len(c) else b""
    workers = threads if threads is not None else min(os.cpu_count() or 1, 8)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # the native loop drops the GIL
        return b"".join(pool.map(run, starts))


def g1_sums_xy(points: bytes | bytearray | memoryview, terms: Sequence[int], counts: Sequence[int], *,
               montgomery: bool = False, threads: int | None = None) -> bytes:
    """Sums of +-points as affine bytes (:func:`g1s_to_xy` layout): output ``j`` is the sum of the next
    ``counts[j]`` entries of ``terms``, each ``+(i + 1)`` or ``-(i + 1)`` for point ``i`` of ``points``
    (affine ``x || y`` bytes).  Native (``teeprover/_native.c`` ``sums``: mixed additions, one
    inversion per batch), GIL released, split over ``threads`` threads (default: one a core).  Bad
    indices or unreduced coordinates raise MalformedEncoding."""
    return _sums_xy(1, points, terms, counts, montgomery, threads)


def g2_sums_xy(points: bytes | bytearray | memoryview, terms: Sequence[int], counts: Sequence[int], *,
               montgomery: bool = False, threads: int | None = None) -> bytes:
    """:func:`g1_sums_xy` in G2 (:func:`g2s_to_xy` layout)."""
    return _sums_xy(2, points, terms, counts, montgomery, threads)


def g1_scale_all(points: Sequence[G1], k: int) -> list[G1]:
    """``[p * k for p in points]``: one scalar, many points of G1 (setup's division by delta).

    :func:`g1_scale_all_xy` on every core (~4x less CPU than the curve library's one multiplication a
    point, which holds the GIL); the results come back affine, so encoding them later costs no
    inversions.  ``k`` is not kept."""
    if not points:
        return []
    return list(g1s_from_xy(g1_scale_all_xy(g1s_to_xy(points), k), check_subgroup=False))


class FixedBase:
    """Many multiples of one point, computed natively (``teeprover/_native.c``): a fixed-base comb
    with ``window``-bit digits (8: 32 mixed additions a point, a 0.8 MB (G1) / 1.5 MB (G2) table built
    in ~10 ms; 16: 16 additions, a 100 / 200 MB table built in ~1 / 3 s, for millions of points),
    then one batch inversion per 1024 results; the GIL is released and the work is split over every
    core.  ~15-30 us a G1 point (8-bit) where the curve library, which has no fixed-base or batch
    multiplication, takes ~100-200 us for one.  What the development ``.ptau`` is made of."""

    def __init__(self, base: Any, *, window: int = 8) -> None:
        if window not in (8, 16):
            raise ValueError("window must be 8 or 16")
        self.group = 1 if isinstance(base, G1) else 2
        self.window = window
        xy = g1s_to_xy([base]) if self.group == 1 else g2s_to_xy([base])
        self.table = _native.comb_table(self.group, _native.to_montgomery(xy), window)

    def mul_xy(self, ks: Sequence[int], *, montgomery: bool = False) -> bytes:
        """``[base * k for k in ks]`` as affine ``x || y`` bytes (g1s_to_xy layout; each coordinate in
        Montgomery form with ``montgomery``, the .ptau/.zkey layout); the identity as zeros."""
        size = G1_XY_BYTES if self.group == 1 else G2_XY_BYTES

        def run(start: int) -> bytes:
            chunk = b"".join([(k % R).to_bytes(32, "little") for k in ks[start:start + _COMB_CHUNK]])
            out: bytes = _native.comb_mul(self.group, self.table, self.window, chunk, montgomery)
            return out

        starts = range(0, len(ks), _COMB_CHUNK)
        if len(starts) <= 1:
            return run(0) if ks else b""
        with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:  # the native loop drops the GIL
            out = b"".join(pool.map(run, starts))
        assert len(out) == len(ks) * size
        return out


_COMB_CHUNK = 1 << 14  # scalars per native call: threads share the work, memory stays small


@lru_cache(maxsize=2)
def _generator_comb(group: int) -> FixedBase:
    return FixedBase(G1() if group == 1 else G2())


def g1_mul_many_xy(base: G1, ks: Sequence[int], *, montgomery: bool = False) -> bytes:
    """``[base * k for k in ks]`` as affine bytes (:class:`FixedBase`, 8-bit table; cached for the generator)."""
    comb = _generator_comb(1) if base == G1() else FixedBase(base)
    return comb.mul_xy(ks, montgomery=montgomery)


def g2_mul_many_xy(base: G2, ks: Sequence[int], *, montgomery: bool = False) -> bytes:
    comb = _generator_comb(2) if base == G2() else FixedBase(base)
    return comb.mul_xy(ks, montgomery=montgomery)


def g1_mul_many(base: G1, ks: Sequence[int]) -> list[G1]:
    """``[base * k for k in ks]`` (:func:`g1_mul_many_xy`, as point objects)."""
    if len(ks) < 64:
        return [base * _ms(k) for k in ks]
    return list(g1s_from_xy(g1_mul_many_xy(base, ks), check_subgroup=False))


def g2_mul_many(base: G2, ks: Sequence[int]) -> list[G2]:
    if len(ks) < 64:
        return [base * _ms(k) for k in ks]
    return list(g2s_from_xy(g2_mul_many_xy(base, ks), check_subgroup=False))


def to_montgomery(data: bytes | bytearray | memoryview) -> bytes:
    """Inverse of :func:`fq_from_montgomery` (native): standard 48-byte LE coordinates -> Montgomery form."""
    try:
        out: bytes = _native.to_montgomery(data)
    except ValueError as exc:
        raise MalformedEncoding(str(exc)) from None
    return out


def _to_ark_g1(p: G1) -> Any:
    return _ark.G1.from_compressed_bytes_unchecked(g1_to_bytes(p))


def _to_ark_g2(q: G2) -> Any:
    return _ark.G2.from_compressed_bytes_unchecked(g2_to_bytes(q))


def pairing(p: G1, q: G2) -> GT:
    return _ark.Pairing.pairing(_to_ark_g1(p), _to_ark_g2(q))


def pairing_check(pairs: Sequence[tuple[G1, G2]]) -> bool:
    """True iff prod e(P_i, Q_i) == 1 in GT."""
    return bool(_pya.GT.pairing_check([p for p, _ in pairs], [q for _, q in pairs]))


# ---------------------------------------------------------------------------
# FFTs over Fr in ffjavascript's root convention


def root_of_unity(n: int) -> int:
    """ffjavascript's primitive n-th root of unity (n a power of two <= 2^32)."""
    k = n.bit_length() - 1
    if n != 1 << k or k > TWO_ADICITY:
        raise ValueError("domain size must be a power of two <= 2^32")
    return pow(FR_NQR, _T << (TWO_ADICITY - k), R)


# ---------------------------------------------------------------------------
# Vectors of Fr as bytes: n values of 32 bytes, little endian, standard form (the .wtns layout).  What
# the prover holds instead of lists of ints or scalar objects (~60-90 B each against 32 here); the
# witness map and the key's A z, B z are computed on them natively (teeprover/_native.c, Fr section).


def fr_vector_to_bytes(xs: Sequence[int]) -> bytes:
    """Ints (reduced mod R here) -> one buffer of 32-byte values."""
    return b"".join([(x % R).to_bytes(FR_BYTES, "little") for x in xs])


def fr_vector_from_bytes(data: bytes | bytearray | memoryview) -> list[int]:
    frm = int.from_bytes
    mv = memoryview(data)
    return [frm(mv[i:i + FR_BYTES], "little") for i in range(0, len(mv), FR_BYTES)]


def fr_check_vector(data: bytes | bytearray | memoryview, what: str) -> None:
    """MalformedEncoding unless ``data`` is whole 32-byte values, each below R (checked natively)."""
    if len(data) % FR_BYTES:
        raise MalformedEncoding(f"{what}: {len(data)} bytes is not a run of {FR_BYTES}-byte values")
    bad = _native.fr_first_unreduced(data)
    if bad >= 0:
        raise MalformedEncoding(f"{what}: value {bad} is not reduced modulo r")


def msm_scalars_from_bytes(data: bytes | bytearray | memoryview, indices: Sequence[int] | None = None
                           ) -> list[MsmScalar]:
    """MSM scalars of the 32-byte values of ``data`` (reduced: see :func:`fr_check_vector`), all of them
    or those at ``indices``."""
    fb = MsmScalar.from_le_bytes
    raw = data if isinstance(data, bytes) else bytes(data)
    if indices is None:
        return [fb(raw[i:i + FR_BYTES]) for i in range(0, len(raw), FR_BYTES)]
    return [fb(raw[FR_BYTES * i:FR_BYTES * i + FR_BYTES]) for i in indices]


def fr_evaluations(records: bytes | bytearray | memoryview, witness: bytes | bytearray | memoryview,
                   n: int) -> tuple[bytes, bytes]:
    """``(A z, B z)`` on a domain of ``n`` points (value c at ``w^c``) as 32-byte vectors, from A/B
    coefficients in a zkey's section-4 layout (``u32 count``, then ``u32 matrix, u32 constraint,
    u32 signal, 32-byte value * 2^512 mod r`` records) and the witness ``z`` (32-byte values).

    Native, GIL released.  MalformedEncoding for a matrix other than A/B, a constraint >= n, a signal
    outside the witness, a value or witness entry not reduced, or records that do not fill the buffer.
    """
    try:
        return _native.fr_evaluations(records, witness, n)
    except ValueError as exc:
        raise MalformedEncoding(str(exc).removeprefix("fr_evaluations: ")) from None


def witness_map(a: bytes | bytearray | memoryview, b: bytes | bytearray | memoryview) -> bytes:
    """``[D(w_2n^(2i+1)) for i < n]`` with ``D = A B - C``, from ``A z`` and ``B z`` on the domain (32-byte
    vectors, ``C = A z * B z`` there): see :mod:`teeprover.groth16.qap`.  Native radix-2 NTTs at
    ffjavascript's roots on a few n x 32-byte buffers, the three transforms on their own threads, GIL
    released.  MalformedEncoding for a value not reduced; ValueError unless ``n`` is a power of two."""
    if len(a) != len(b) or len(a) % FR_BYTES:
        raise ValueError("witness_map: A z and B z must be equal runs of 32-byte values")
    try:
        return _native.fr_witness_map(a, b)
    except ValueError as exc:
        if "not reduced" in str(exc):
            raise MalformedEncoding(str(exc).removeprefix("fr_witness_map: ")) from None
        raise


_check_constants()

__all__ = [
    "G1", "G2", "GT", "Scalar", "MsmScalar", "R", "P", "G1_BYTES", "G2_BYTES", "G1_XY_BYTES", "G2_XY_BYTES",
    "FR_BYTES", "fr", "frs", "fr_int", "fr_ints", "fr_to_bytes", "fr_from_bytes", "inv",
    "msm_scalars", "msm_scalars_from_fr",
    "g1_generator", "g2_generator", "g1_identity", "g2_identity", "g1_mul", "g2_mul",
    "g1_to_bytes", "g2_to_bytes", "g1_from_bytes", "g2_from_bytes", "g1_is_identity", "g2_is_identity",
    "g1_to_affine", "g2_to_affine", "g1_from_affine", "g2_from_affine",
    "g1s_from_xy", "g2s_from_xy", "g1s_to_xy", "g2s_to_xy",
    "fq_from_montgomery", "g1s_from_montgomery", "g2s_from_montgomery",
    "zero_chunks",
    "msm_g1", "msm_g2", "g1_scale_all", "g1_scale_all_xy", "g1_sums_xy", "g2_sums_xy", "glv_split", "GLV_LAMBDA",
    "GLV_BETA", "BLS_Z",
    "g1_mul_many", "g2_mul_many", "g1_mul_many_xy",
    "g2_mul_many_xy", "FixedBase", "to_montgomery", "pairing", "pairing_check",
    "root_of_unity", "fr_vector_to_bytes", "fr_vector_from_bytes", "fr_check_vector",
    "msm_scalars_from_bytes", "fr_evaluations", "witness_map",
]
