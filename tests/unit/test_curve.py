"""Laws of the curve adapter, cross-checked against py_ecc (the independent reference)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.bls.point_compression import compress_G1, compress_G2
from py_ecc.optimized_bls12_381 import G1 as E_G1
from py_ecc.optimized_bls12_381 import G2 as E_G2
from py_ecc.optimized_bls12_381 import multiply, normalize

from teeprover import curve
from teeprover.errors import MalformedEncoding

RNG = random.Random(1)


def _ref_g1_bytes(k: int) -> bytes:
    return compress_G1(multiply(E_G1, k)).to_bytes(48, "big")


def _ref_g2_bytes(k: int) -> bytes:
    z1, z2 = compress_G2(multiply(E_G2, k))
    return z1.to_bytes(48, "big") + z2.to_bytes(48, "big")


@pytest.mark.parametrize("k", [1, 2, 12345, curve.R - 1, RNG.randrange(curve.R)])
def test_g1_encoding_matches_py_ecc(k: int) -> None:
    p = curve.g1_mul(curve.g1_generator(), k)
    assert curve.g1_to_bytes(p) == _ref_g1_bytes(k)
    assert curve.g1_from_bytes(_ref_g1_bytes(k)) == p
    x, y = normalize(multiply(E_G1, k))
    assert curve.g1_to_affine(p) == (x.n, y.n)


@pytest.mark.parametrize("k", [1, 7, RNG.randrange(curve.R)])
def test_g2_encoding_matches_py_ecc(k: int) -> None:
    p = curve.g2_mul(curve.g2_generator(), k)
    assert curve.g2_to_bytes(p) == _ref_g2_bytes(k)
    assert curve.g2_from_bytes(_ref_g2_bytes(k)) == p
    x, y = normalize(multiply(E_G2, k))
    xc, yc = (int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1]))
    assert curve.g2_to_affine(p) == (xc, yc)
    assert curve.g2_from_affine(xc, yc) == p


def test_identity_round_trips() -> None:
    assert curve.g1_from_bytes(curve.g1_to_bytes(curve.g1_identity())) == curve.g1_identity()
    assert curve.g2_from_bytes(curve.g2_to_bytes(curve.g2_identity())) == curve.g2_identity()
    assert curve.g1_to_affine(curve.g1_identity()) is None


def _not_in_subgroup_g1() -> bytes:
    # smallest x giving a curve point outside the prime-order subgroup (cofactor is large)
    for x in range(1, 100):
        rhs = (x ** 3 + 4) % curve.P
        if pow(rhs, (curve.P - 1) // 2, curve.P) == 1:
            b = bytearray(x.to_bytes(48, "big"))
            b[0] |= 0x80
            return bytes(b)
    raise AssertionError


@pytest.mark.parametrize("bad", [
    b"", b"\x00" * 48, b"\x80" + b"\x00" * 46,  # wrong flags / short
    b"\xff" * 48,  # x >= p
    b"\xc0" + b"\x00" * 46 + b"\x01",  # infinity with junk
    bytes([0x80]) + (3).to_bytes(47, "big"),  # x^3+4 not a square? or not in subgroup
])
def test_g1_decoding_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(MalformedEncoding):
        curve.g1_from_bytes(bad)


def test_g1_decoding_rejects_point_outside_subgroup() -> None:
    b = _not_in_subgroup_g1()
    with pytest.raises(MalformedEncoding):
        curve.g1_from_bytes(b)
    curve.g1_from_bytes(b, check_subgroup=False)  # on the curve, only the subgroup check fails


def test_g2_decoding_rejects_malformed() -> None:
    good = curve.g2_to_bytes(curve.g2_generator())
    for bad in (good[:95], b"\x00" * 96, b"\xff" * 96, bytes([good[0]]) + b"\x00" * 47 + good[48:]):
        with pytest.raises(MalformedEncoding):
            curve.g2_from_bytes(bad)


def test_off_curve_affine_raises() -> None:
    x, y = curve.g1_to_affine(curve.g1_generator())  # type: ignore[misc]
    with pytest.raises(MalformedEncoding):
        curve.g1_from_affine(x, y + 1)


def test_pairing_bilinearity_on_g1_and_g2() -> None:
    a, b = RNG.randrange(1, curve.R), RNG.randrange(1, curve.R)
    g1, g2 = curve.g1_generator(), curve.g2_generator()
    lhs = curve.pairing(curve.g1_mul(g1, a), curve.g2_mul(g2, b))
    assert lhs == curve.pairing(curve.g1_mul(g1, a * b), g2)
    assert lhs == curve.pairing(g1, curve.g2_mul(g2, a * b))
    assert lhs != curve.pairing(curve.g1_mul(g1, a * b + 1), g2)  # the "no" twin


def test_pairing_non_degenerate_and_matches_py_ecc_check() -> None:
    from py_ecc.optimized_bls12_381 import FQ12, final_exponentiate, neg, pairing
    g1, g2 = curve.g1_generator(), curve.g2_generator()
    assert curve.pairing(g1, g2) != curve.GT.one()
    assert curve.pairing_check([(g1, curve.g2_mul(g2, 6)), (-curve.g1_mul(g1, 2), curve.g2_mul(g2, 3))])
    assert not curve.pairing_check([(g1, curve.g2_mul(g2, 6)), (-curve.g1_mul(g1, 2), curve.g2_mul(g2, 4))])
    # the same relation in py_ecc
    e = final_exponentiate(pairing(multiply(E_G2, 6), E_G1, final_exponentiate=False)
                           * pairing(multiply(E_G2, 3), neg(multiply(E_G1, 2)), final_exponentiate=False))
    assert e == FQ12.one()


def test_msm_equals_sum_of_products() -> None:
    ks = [RNG.randrange(curve.R) for _ in range(20)]
    es = [RNG.randrange(curve.R) for _ in range(20)]
    g1, g2 = curve.g1_generator(), curve.g2_generator()
    p1 = [curve.g1_mul(g1, k) for k in ks]
    p2 = [curve.g2_mul(g2, k) for k in ks]
    expect = sum(k * e for k, e in zip(ks, es, strict=True)) % curve.R
    assert curve.msm_g1(p1, curve.frs(es)) == curve.g1_mul(g1, expect)
    assert curve.msm_g2(p2, curve.frs(es)) == curve.g2_mul(g2, expect)
    assert curve.msm_g1(p1, curve.frs(es[:-1] + [es[-1] + 1])) != curve.g1_mul(g1, expect)


def test_snarkjs_root_of_unity_constant() -> None:
    # ffjavascript: w[3] for BLS12-381 Fr is 5^((r-1)/8)
    assert curve.root_of_unity(8) == pow(5, (curve.R - 1) // 8, curve.R)


def test_scalar_round_trip_above_2_63() -> None:
    for x in (0, 1, 2**63, 2**64 + 5, curve.R - 1):
        assert curve.fr_int(curve.fr(x)) == x
    with pytest.raises(MalformedEncoding):
        curve.fr_from_bytes(curve.R.to_bytes(32, "little"))


def test_points_from_montgomery_reads_snarkjs_coordinates_and_checks_them() -> None:
    import random

    from teeprover.curve import P
    from teeprover.errors import MalformedEncoding

    rq = pow(2, 384, P)
    rnd = random.Random(3)
    g1s = curve.g1_mul_many(curve.g1_generator(), [rnd.randrange(1, curve.R) for _ in range(70)]) + [
        curve.g1_identity()]
    g2s = [curve.g2_mul(curve.g2_generator(), rnd.randrange(1, curve.R)) for _ in range(3)] + [curve.g2_identity()]

    def mont(data: bytes) -> bytes:
        return b"".join((int.from_bytes(data[o:o + 48], "little") * rq % P).to_bytes(48, "little")
                        for o in range(0, len(data), 48))

    m1, m2 = mont(curve.g1s_to_xy(g1s)), mont(curve.g2s_to_xy(g2s))
    assert list(curve.g1s_from_montgomery(m1)) == g1s
    assert list(curve.g2s_from_montgomery(m2)) == g2s
    assert curve.zero_chunks(m1, 96) == [70] and curve.zero_chunks(m2, 192) == [3]
    assert curve.zero_chunks(bytes(95) + b"\x01" + bytes(96), 96) == [1]
    with pytest.raises(MalformedEncoding):  # a coordinate >= p
        curve.g1s_from_montgomery(P.to_bytes(48, "little") + m1[48:])
    with pytest.raises(MalformedEncoding):  # off the curve
        curve.g1s_from_montgomery(m1[:95] + bytes([m1[95] ^ 1]))
    with pytest.raises(MalformedEncoding):
        curve.g1s_from_montgomery(m1[:95])


def test_native_montgomery_conversion_matches_python_integers() -> None:
    """The C helper against the definition x = m * 2^-384 mod p, on edge values and random ones."""
    import random

    from teeprover.curve import P
    from teeprover.errors import MalformedEncoding

    rinv = pow(2, -384, P)
    rnd = random.Random(11)
    values = [0, 1, 2, P - 1, P - 2, 2**64 - 1, 2**64, 2**320, P >> 1, (P >> 8) << 8]
    values += [rnd.randrange(P) for _ in range(2000)]
    values += [(rnd.getrandbits(64) << (64 * rnd.randrange(6))) % P for _ in range(200)]  # one non-zero limb
    data = b"".join(v.to_bytes(48, "little") for v in values)
    out = curve.fq_from_montgomery(data)
    assert [int.from_bytes(out[o:o + 48], "little") for o in range(0, len(out), 48)] == [v * rinv % P for v in values]
    assert curve.fq_from_montgomery(memoryview(bytearray(data))[48:96]) == out[48:96]
    assert curve.fq_from_montgomery(b"") == b""
    for bad in (P, P + 1, 2**384 - 1):
        with pytest.raises(MalformedEncoding, match="coordinate 1 is not reduced"):
            curve.fq_from_montgomery(bytes(48) + bad.to_bytes(48, "little"))
    with pytest.raises(MalformedEncoding, match="multiple of 48"):
        curve.fq_from_montgomery(bytes(47))


_P = curve.P


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.integers(0, _P - 1), st.integers(_P - 3, _P + 3), st.integers(0, 2**384 - 1)),
                max_size=6),
       st.one_of(st.just(b""), st.binary(max_size=47)))
def test_native_montgomery_conversion_on_arbitrary_bytes(values: list[int], tail: bytes) -> None:
    """Any input: either the reference result or MalformedEncoding (never a crash or a wrong value)."""
    from teeprover.curve import P

    data = b"".join(v.to_bytes(48, "little") for v in values) + tail
    coords = [int.from_bytes(data[o:o + 48], "little") for o in range(0, len(data), 48)]
    if len(data) % 48 or any(c >= P for c in coords):
        with pytest.raises(MalformedEncoding):
            curve.fq_from_montgomery(data)
        return
    out = curve.fq_from_montgomery(data)
    rinv = pow(2, -384, P)
    assert out == b"".join((c * rinv % P).to_bytes(48, "little") for c in coords)


_EDGE_SCALARS = [0, 1, 2, 255, 256, 257, 1 << 248, (1 << 256) - 1 - curve.R, curve.R - 1, curve.R, curve.R + 3]


@pytest.mark.parametrize("group", [1, 2])
def test_native_fixed_base_comb_equals_library_multiplication(group: int) -> None:
    """The native comb (teeprover/_native.c) against the curve library's own scalar multiplication:
    random scalars, scalars whose bytes hit the table's edges, a base other than the generator, and
    the Montgomery output is the standard output converted."""
    rnd = random.Random(group)
    # One body for both groups: the group is a parameter, so these are typed Any.
    gen: Any = curve.g1_generator() if group == 1 else curve.g2_generator()
    mul: Any = curve.g1_mul if group == 1 else curve.g2_mul
    many_xy: Any = curve.g1_mul_many_xy if group == 1 else curve.g2_mul_many_xy
    to_xy: Any = curve.g1s_to_xy if group == 1 else curve.g2s_to_xy
    ks = [rnd.randrange(curve.R) for _ in range(150)] + _EDGE_SCALARS
    for base in (gen, mul(gen, rnd.randrange(2, curve.R))):
        got = many_xy(base, ks)
        assert got == to_xy([mul(base, k) for k in ks])
        assert many_xy(base, ks, montgomery=True) == curve.to_montgomery(got)
    assert many_xy(gen, []) == b""


def test_native_comb_uses_every_core_on_large_batches() -> None:
    ks = list(range(1, 3 * (1 << 14) + 5))  # several native calls, joined in order
    got = curve.g1_mul_many_xy(curve.g1_generator(), ks)
    for i in (0, 1 << 14, (1 << 14) + 1, len(ks) - 1):
        assert got[96 * i:96 * (i + 1)] == curve.g1s_to_xy([curve.g1_mul(curve.g1_generator(), ks[i])])


def test_to_montgomery_inverts_from_montgomery_and_rejects_unreduced() -> None:
    data = b"".join(RNG.randrange(curve.P).to_bytes(48, "little") for _ in range(20))
    assert curve.fq_from_montgomery(curve.to_montgomery(data)) == data
    assert curve.to_montgomery(bytes(48)) == bytes(48)
    with pytest.raises(MalformedEncoding):
        curve.to_montgomery(curve.P.to_bytes(48, "little"))
    with pytest.raises(MalformedEncoding):
        curve.to_montgomery(bytes(47))


def test_sixteen_bit_comb_equals_library_multiplication() -> None:
    """The wide table (the .ptau's, from power 16 on) reads two bytes a digit: check digits that
    straddle bytes and the top digit, in G1 (the G2 code is the same macro, checked above at 8 bits)."""
    rnd = random.Random(16)
    gen = curve.g1_generator()
    ks = [rnd.randrange(curve.R) for _ in range(40)] + [65535, 65536, 65537, 1 << 240, curve.R - 1] + _EDGE_SCALARS
    wide = curve.FixedBase(gen, window=16)
    assert wide.mul_xy(ks) == curve.g1s_to_xy([curve.g1_mul(gen, k) for k in ks])
    assert wide.mul_xy(ks, montgomery=True) == curve.FixedBase(gen).mul_xy(ks, montgomery=True)
    with pytest.raises(ValueError):
        curve.FixedBase(gen, window=12)
