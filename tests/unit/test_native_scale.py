"""One scalar times many G1 points, natively (teeprover/_native.c ``g1_scale``, ``curve.g1_scale_all``):
against the curve library's own multiplication, with the GLV constants pinned and the field product
(both implementations) checked against Python integers."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teeprover import _native, curve
from teeprover.errors import MalformedEncoding

P, R = curve.P, curve.R
RNG = random.Random(20)


def _points(ks: list[int]) -> list[curve.G1]:
    return [curve.g1_mul(curve.g1_generator(), k) for k in ks]


def _expected(points: list[curve.G1], k: int) -> list[curve.G1]:
    return [curve.g1_mul(p, k) for p in points]


def test_glv_constants_are_the_endomorphism_of_g1() -> None:
    lam, beta = curve.GLV_LAMBDA, curve.GLV_BETA
    assert lam == curve.BLS_Z**2 - 1 == 0xAC45A4010001A40200000000FFFFFFFF
    assert (lam * lam + lam + 1) % R == 0
    assert pow(beta, 3, P) == 1 and beta != 1
    for p in _points([1, RNG.randrange(1, R), RNG.randrange(1, R)]):
        x, y = curve.g1_to_affine(p) or (0, 0)
        assert curve.g1_to_affine(curve.g1_mul(p, lam)) == (beta * x % P, y)
        # the other cube root of unity is lambda^2's, not lambda's
        assert curve.g1_to_affine(curve.g1_mul(p, lam)) != (beta * beta * x % P, y)
        assert curve.g1_to_affine(curve.g1_mul(p, lam * lam)) == (beta * beta * x % P, y)


def test_native_beta_is_the_pinned_one() -> None:
    """k1 = 0, k2 = 1 is phi itself: the C table's beta is GLV_BETA."""
    p = _points([RNG.randrange(1, R)])[0]
    x, y = curve.g1_to_affine(p) or (0, 0)
    out = _native.g1_scale(curve.g1s_to_xy([p]), bytes(16), (1).to_bytes(16, "little"), False)
    assert out == (beta_x := curve.GLV_BETA * x % P).to_bytes(48, "little") + y.to_bytes(48, "little")
    assert beta_x != x


@pytest.mark.parametrize("k", [1, 2, R - 1, R - 2, curve.GLV_LAMBDA, curve.GLV_LAMBDA + 1, curve.GLV_LAMBDA - 1,
                               curve.GLV_LAMBDA * 3 + 7, 1 << 127, (1 << 128) - 1, R // 2, RNG.randrange(R)])
def test_glv_split_recombines_below_2_128(k: int) -> None:
    k1, k2 = curve.glv_split(k)
    assert 0 <= k1 < 1 << 128 and 0 <= k2 < 1 << 128
    assert (k1 + k2 * curve.GLV_LAMBDA) % R == k % R


_EDGES = [0, 1, 2, 3, 15, 16, 17, 31, 32, R - 1, R - 2, R, R + 1, 2 * R + 5, (1 << 256) - 1, curve.GLV_LAMBDA,
          curve.GLV_LAMBDA - 1, curve.GLV_LAMBDA + 1, curve.GLV_LAMBDA * 0x1F, (1 << 128) - 1, 1 << 128]


@pytest.mark.parametrize("k", _EDGES)
def test_edge_scalars_match_the_library(k: int) -> None:
    """k = 0, 1, r - 1, k >= r (reduced mod r), digits at the NAF window's edges, the identity in the
    batch and a point equal to another (the same chain twice)."""
    pts = _points([1, 2, RNG.randrange(1, R), R - 1]) + [curve.g1_identity()] + _points([1])
    got = curve.g1_scale_all(pts, k)
    assert got == _expected(pts, k)
    assert curve.g1_is_identity(got[4])
    if k % R == 0:
        assert all(curve.g1_is_identity(p) for p in got)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, R - 1), min_size=1, max_size=6), st.integers(0, (1 << 256) - 1))
def test_random_points_and_scalars_match_the_library(point_ks: list[int], k: int) -> None:
    pts = _points(point_ks)
    assert curve.g1_scale_all(pts, k) == _expected(pts, k)


def test_montgomery_output_is_the_standard_output_converted() -> None:
    pts = _points([RNG.randrange(1, R) for _ in range(5)]) + [curve.g1_identity()]
    k = RNG.randrange(R)
    xy = curve.g1s_to_xy(pts)
    std = curve.g1_scale_all_xy(xy, k)
    assert std == curve.g1s_to_xy(_expected(pts, k))
    assert curve.g1_scale_all_xy(xy, k, montgomery=True) == curve.to_montgomery(std)


def test_batch_crossing_the_thread_split(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several native calls on several threads, joined in order (small pieces here; 8192 points in use),
    and more points than one internal batch of the C code (256) in one call."""
    monkeypatch.setattr(curve, "_SCALE_CHUNK", 7)
    pts = _points([RNG.randrange(1, R) for _ in range(30)])
    pts[10] = curve.g1_identity()
    k = RNG.randrange(R)
    assert curve.g1_scale_all(pts, k) == _expected(pts, k)
    assert curve.g1_scale_all_xy(curve.g1s_to_xy(pts), k, threads=1) == curve.g1s_to_xy(_expected(pts, k))
    monkeypatch.undo()
    many = list(curve.g1s_from_xy(curve.g1_mul_many_xy(curve.g1_generator(), range(1, 600)), check_subgroup=False))
    got = curve.g1_scale_all(many, k)
    for i in (0, 255, 256, 257, 511, 512, 598):
        assert got[i] == curve.g1_mul(many[i], k)


def test_empty_and_malformed_input() -> None:
    assert curve.g1_scale_all([], 5) == []
    assert curve.g1_scale_all_xy(b"", 5) == b""
    with pytest.raises(MalformedEncoding):
        curve.g1_scale_all_xy(bytes(95), 5)
    unreduced = P.to_bytes(48, "little") + (2).to_bytes(48, "little")
    with pytest.raises(MalformedEncoding):
        curve.g1_scale_all_xy(unreduced, 5)
    with pytest.raises(ValueError):
        _native.g1_scale(bytes(96), bytes(15), bytes(16), False)


def _have_adx() -> bool:
    try:
        _native.fp_mul_check(bytes(48), bytes(48), True)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("adx", [False, pytest.param(True, marks=pytest.mark.skipif(
    not _have_adx(), reason="this CPU has no BMI2/ADX: only the C product is used"))])
def test_field_product_matches_python_integers(adx: bool) -> None:
    """Montgomery product a b / 2^384 mod p, both implementations (the assembler one is what runs on
    CPUs with ADX, the C one elsewhere): random values and the largest ones."""
    edge = [0, 1, 2, P - 1, P - 2, P - 1 - (1 << 64), 1 << 380, (P - 1) // 2, 1 << 64, (1 << 64) - 1]
    xs = edge + [RNG.randrange(P) for _ in range(300)]
    ys = list(reversed(edge)) + [RNG.randrange(P) for _ in range(300)]
    xs, ys = xs + edge, ys + edge  # squares of the edges too
    a = b"".join(x.to_bytes(48, "little") for x in xs)
    b = b"".join(y.to_bytes(48, "little") for y in ys)
    rinv = pow(2, -384, P)
    expected = b"".join((x * y * rinv % P).to_bytes(48, "little") for x, y in zip(xs, ys, strict=True))
    assert _native.fp_mul_check(a, b, adx) == expected
    with pytest.raises(ValueError):
        _native.fp_mul_check(P.to_bytes(48, "little"), bytes(48), adx)


def _library_sums(pts: list[Any], terms: list[int], counts: list[int], zero: Any) -> list[Any]:
    out, at = [], 0
    for c in counts:
        acc = zero
        for t in terms[at:at + c]:
            acc = acc + pts[t - 1] if t > 0 else acc - pts[-t - 1]
        out.append(acc)
        at += c
    return out


@pytest.mark.parametrize("group", [1, 2])
def test_signed_sums_match_the_library(group: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Setup's A, B and C queries: sums of +-points, with the cases a mixed addition must get right
    (P + P, P - P, the identity as a term, no terms at all), split over threads and in one call."""
    gen: Any = curve.g1_generator() if group == 1 else curve.g2_generator()
    zero: Any = curve.g1_identity() if group == 1 else curve.g2_identity()
    mul: Any = curve.g1_mul if group == 1 else curve.g2_mul
    to_xy: Any = curve.g1s_to_xy if group == 1 else curve.g2s_to_xy
    sums_xy: Any = curve.g1_sums_xy if group == 1 else curve.g2_sums_xy
    pts = [mul(gen, RNG.randrange(1, R)) for _ in range(12)] + [zero]
    xy = to_xy(pts)
    terms = [1, 2, -3, 4, 4, 5, -5, 13, 6, -13, 7, 7, 7, -8, 9, 10, -11, -12, 12, 3]
    counts = [3, 2, 2, 1, 0, 2, 3, 1, 3, 2, 1]
    expected = to_xy(_library_sums(pts, terms, counts, zero))
    assert sums_xy(xy, terms, counts) == expected
    assert sums_xy(xy, terms, counts, montgomery=True) == curve.to_montgomery(expected)
    monkeypatch.setattr(curve, "_SCALE_CHUNK", 3)
    assert sums_xy(xy, terms, counts, threads=2) == expected
    assert sums_xy(xy, [], []) == b""
    with pytest.raises(MalformedEncoding):
        sums_xy(xy, [14], [1])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.lists(st.integers(-6, 6).filter(bool), max_size=5), min_size=1, max_size=8))
def test_random_signed_sums_match_the_library(groups: list[list[int]]) -> None:
    pts = _points([3, 5, 7, 11, R - 13, 17])
    terms = [t for g in groups for t in g]
    counts = [len(g) for g in groups]
    assert curve.g1_sums_xy(curve.g1s_to_xy(pts), terms, counts) == curve.g1s_to_xy(
        _library_sums(pts, terms, counts, curve.g1_identity()))


@pytest.mark.parametrize(("terms", "counts"), [([1, 2], [1]), ([1], [2]), ([3], [1]), ([-3], [1]), ([0], [1]),
                                                ([1], [-1])])
def test_signed_sums_reject_bad_terms(terms: list[int], counts: list[int]) -> None:
    xy = curve.g1s_to_xy(_points([1, 2]))
    with pytest.raises(MalformedEncoding):
        curve.g1_sums_xy(xy, terms, counts)


def test_signed_sums_reject_unreduced_coordinates() -> None:
    bad = curve.g1s_to_xy(_points([1])) + P.to_bytes(48, "little") + bytes(48)
    assert curve.g1_sums_xy(bad, [1], [1]) == curve.g1s_to_xy(_points([1]))  # an unused point is not read
    with pytest.raises(MalformedEncoding):
        curve.g1_sums_xy(bad, [1, -2], [2])


def test_setup_with_coefficients_other_than_one_gives_keys_that_verify() -> None:
    """Setup's native sums take the +-1 term lists and its MSMs the others: a circuit with both, in
    A, B and C, private and public, gives a key whose proofs verify, and not for a wrong output."""
    from teeprover.groth16 import prove, setup, verify
    from teeprover.r1cs import R1CS, Constraint
    from teeprover.snarkjs.ptau import lagrange_params_from_secrets

    # variables: 0 one | 1 out (public) | 2 x | 3 y | 4 w;  w = 3x (10 - y),  2 out - y = w
    cons = (Constraint({2: 3}, {3: R - 1, 0: 10}, {4: 1}), Constraint({4: 1}, {0: 1}, {1: 2, 3: R - 1}))
    r1cs = R1CS(num_variables=5, num_public=1, constraints=cons)
    x, y = 5, 7
    w = 3 * x * (10 - y)
    z = [1, (w + y) * pow(2, -1, R) % R, x, y, w]
    r1cs.check_witness(z)
    params = lagrange_params_from_secrets(r1cs.domain_size(), tau=0x5EED, alpha=11, beta=13)
    pk = setup.setup(r1cs, params, setup.ToxicWaste(delta=0xD17A))
    proof = prove.prove(pk, z, 12345, 67890)
    assert verify.verify(pk.vk, [z[1]], proof)
    assert not verify.verify(pk.vk, [(z[1] + 1) % R], proof)
