"""The Fr section of teeprover/_native.c: products, NTTs, the QAP witness map and A z, B z from zkey
section-4 records, each against Python integers (naive evaluation: an oracle that shares no code with
the NTT), plus the refusals (section-4 records out of range, values not reduced)."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from teeprover import _native, curve
from teeprover.curve import R
from teeprover.errors import MalformedEncoding
from teeprover.groth16 import prove, qap, setup, verify
from teeprover.snarkjs import _binfile, interop, r1cs, wtns, zkey
from teeprover.snarkjs.ptau import lagrange_params_from_secrets
from tests.support.circuits import squaring_chain

RNG = random.Random(0xF7)
RR2 = pow(2, 512, R)


def enc(xs: list[int]) -> bytes:
    return b"".join(x.to_bytes(32, "little") for x in xs)


def dec(data: bytes) -> list[int]:
    return [int.from_bytes(data[i:i + 32], "little") for i in range(0, len(data), 32)]


def naive_eval(coeffs: list[int], x: int) -> int:
    acc = 0
    for c in reversed(coeffs):
        acc = (acc * x + c) % R
    return acc


def naive_interpolate(values: list[int]) -> list[int]:
    """Coefficients of the polynomial with p(w^i) = values[i], by the inverse DFT sum (O(n^2))."""
    n = len(values)
    w_inv = pow(curve.root_of_unity(n), -1, R)
    n_inv = pow(n, -1, R)
    return [sum(v * pow(w_inv, i * k, R) for i, v in enumerate(values)) * n_inv % R for k in range(n)]


def naive_witness_map(a: list[int], b: list[int]) -> list[int]:
    """h_i = D(w_2n^(2i+1)), D = A B - C with A, B, C interpolated on the domain and C = A∘B there."""
    n = len(a)
    ca, cb = naive_interpolate(a), naive_interpolate(b)
    cc = naive_interpolate([x * y % R for x, y in zip(a, b, strict=True)])
    g = curve.root_of_unity(2 * n)
    out = []
    for i in range(n):
        x = pow(g, 2 * i + 1, R)
        out.append((naive_eval(ca, x) * naive_eval(cb, x) - naive_eval(cc, x)) % R)
    return out


def test_fr_products_of_both_implementations_match_python_integers() -> None:
    xs = [0, 1, R - 1, R - 2, 2**255 % R, *[RNG.randrange(R) for _ in range(200)]]
    ys = [R - 1, 1, R - 1, 5, 2**200, *[RNG.randrange(R) for _ in range(200)]]
    want = [x * y * pow(2, -256, R) % R for x, y in zip(xs, ys, strict=True)]
    assert dec(_native.fr_mul_check(enc(xs), enc(ys), False)) == want
    try:
        assert dec(_native.fr_mul_check(enc(xs), enc(ys), True)) == want
    except ValueError as exc:  # a CPU without BMI2/ADX: only the C product runs there
        assert "no BMI2/ADX" in str(exc)
    with pytest.raises(ValueError, match=">= r"):
        _native.fr_mul_check(enc([R]), enc([1]), False)


@pytest.mark.parametrize("n", [1, 2, 4, 32, 64])
def test_ntt_is_evaluation_at_ffjavascript_roots_and_the_inverse_inverts(n: int) -> None:
    co = [RNG.randrange(R) for _ in range(n)]
    w = curve.root_of_unity(n)
    assert pow(w, n, R) == 1 and (n == 1 or pow(w, n // 2, R) != 1)  # a primitive n-th root
    ev = [naive_eval(co, pow(w, i, R)) for i in range(n)]
    assert dec(_native.fr_ntt(enc(co), False)) == ev
    assert dec(_native.fr_ntt(enc(ev), True)) == co
    if n > 1:
        assert dec(_native.fr_ntt(enc(ev), False)) != co  # the forward transform is not its own inverse


@pytest.mark.parametrize("n", [1, 2, 8, 64])
def test_witness_map_is_d_on_the_odd_coset(n: int) -> None:
    a = [RNG.randrange(R) for _ in range(n)]
    b = [RNG.randrange(R) for _ in range(n)]
    got = dec(curve.witness_map(enc(a), enc(b)))
    assert got == naive_witness_map(a, b)
    if n > 1:
        b[0] = (b[0] + 1) % R
        assert dec(curve.witness_map(enc(a), enc(b))) != got


def test_witness_map_at_a_larger_domain_matches_naive_evaluation_at_sampled_points() -> None:
    """n = 2^12: the coefficients from the (separately checked) inverse NTT, evaluated by Horner at a few
    odd-coset points, against the witness map's values there."""
    n = 1 << 12
    a = [RNG.randrange(R) for _ in range(n)]
    b = [RNG.randrange(R) for _ in range(n)]
    h = dec(curve.witness_map(enc(a), enc(b)))
    ca, cb = dec(_native.fr_ntt(enc(a), True)), dec(_native.fr_ntt(enc(b), True))
    cc = dec(_native.fr_ntt(enc([x * y % R for x, y in zip(a, b, strict=True)]), True))
    g = curve.root_of_unity(2 * n)
    for i in (0, 1, 7, n // 2, n - 1, RNG.randrange(n)):
        x = pow(g, 2 * i + 1, R)
        assert h[i] == (naive_eval(ca, x) * naive_eval(cb, x) - naive_eval(cc, x)) % R


def test_witness_map_refuses_unreduced_values_and_other_sizes() -> None:
    with pytest.raises(MalformedEncoding, match="value 1 of B z is not reduced"):
        curve.witness_map(enc([1, 2]), enc([3, R]))
    with pytest.raises(ValueError, match="power of two"):
        curve.witness_map(enc([1, 2, 3]), enc([1, 2, 3]))
    with pytest.raises(ValueError):
        curve.witness_map(enc([1, 2]), enc([1]))
    with pytest.raises(ValueError):
        curve.witness_map(b"", b"")


# --- A z, B z from section-4 records ------------------------------------------------------------

def python_evaluations(records: bytes, n: int, z: list[int]) -> tuple[list[int], list[int]]:
    acc = ([0] * n, [0] * n)
    (count,) = struct.unpack_from("<I", records)
    for m, c, s, v in struct.iter_unpack("<III32s", records[4:4 + 44 * count]):
        acc[m][c] = (acc[m][c] + int.from_bytes(v, "little") * pow(RR2, -1, R) * z[s]) % R
    return acc


@pytest.fixture(scope="module")
def chain():
    cs, z = squaring_chain(40)  # 41 constraints + 2 public + 1 -> n = 64
    params = lagrange_params_from_secrets(cs.domain_size(), tau=0x1234567, alpha=0xA1FA, beta=0xBE7A)
    return cs, z, setup.setup(cs, params, setup.ToxicWaste(delta=0xDE17A))


def _section4(zkey_bytes: bytes) -> bytes:
    return bytes(_binfile.parse(zkey_bytes, "zkey", versions=(1,), what="t").section(4, what="t"))


def test_evaluations_of_a_real_key_match_python(chain) -> None:
    """Section 4 of the .zkey we write for a real circuit gives the Python evaluation, satisfies the
    circuit (A z * B z = C z on every constraint) and equals qap.coeff_records of the decoded key's own
    coefficients (the in-memory prover's input)."""
    cs, z, pk = chain
    sec4 = _section4(zkey.zkey_to_bytes(pk))
    assert sec4 == qap.coeff_records(pk.coeffs)
    a, b = curve.fr_evaluations(sec4, curve.fr_vector_to_bytes(z), pk.domain_size)
    want_a, want_b = python_evaluations(sec4, pk.domain_size, z)
    assert dec(a) == want_a and dec(b) == want_b
    for c, con in enumerate(cs.constraints):
        cz = sum(v * z[s] for s, v in con.c.items()) % R
        assert dec(a)[c] * dec(b)[c] % R == cz
    assert dec(a)[cs.num_constraints:cs.num_constraints + cs.num_public + 1] == z[:cs.num_public + 1]


def test_evaluations_with_arbitrary_coefficients_and_repeats_match_python() -> None:
    n, nv = 16, 9
    z = [1, *[RNG.randrange(R) for _ in range(nv - 1)]]
    recs = [(RNG.randrange(2), RNG.randrange(n), RNG.randrange(nv), RNG.randrange(R)) for _ in range(300)]
    recs += [(0, 3, 4, 1), (0, 3, 4, R - 1), (1, n - 1, nv - 1, 2)]  # repeats and extremes
    records = struct.pack("<I", len(recs)) + b"".join(
        struct.pack("<III32s", m, c, s, (v * RR2 % R).to_bytes(32, "little")) for m, c, s, v in recs)
    a, b = curve.fr_evaluations(records, enc(z), n)
    assert (dec(a), dec(b)) == python_evaluations(records, n, z)


@pytest.mark.parametrize(("record", "match"), [
    ((2, 0, 0, 1), "coefficient 1 .*matrix 2.* a matrix other than A and B"),
    ((0, 16, 0, 1), "constraint 16.* a constraint outside the domain"),
    ((1, 0, 9, 1), "signal 9.* a signal outside the witness"),
    ((0, 0, 0, R), "a value not reduced modulo r"),
])
def test_evaluations_refuse_records_out_of_range(record: tuple[int, int, int, int], match: str) -> None:
    n, nv = 16, 9
    z = enc([1] * nv)
    m, c, s, v = record
    good = struct.pack("<III32s", 0, 1, 1, RR2.to_bytes(32, "little"))
    bad = struct.pack("<III32s", m, c, s, v.to_bytes(32, "little"))
    records = struct.pack("<I", 3) + good + bad + good
    with pytest.raises(MalformedEncoding, match=match):
        curve.fr_evaluations(records, z, n)
    assert curve.fr_evaluations(struct.pack("<I", 2) + good + good, z, n)[0] == enc([0, 2] + [0] * (n - 2))


def test_evaluations_refuse_a_truncated_section_an_unreduced_witness_and_a_bad_domain() -> None:
    good = struct.pack("<III32s", 0, 1, 1, RR2.to_bytes(32, "little"))
    with pytest.raises(MalformedEncoding, match="does not hold its coefficient count"):
        curve.fr_evaluations(struct.pack("<I", 2) + good, enc([1, 1]), 4)
    with pytest.raises(MalformedEncoding, match="does not hold its coefficient count"):
        curve.fr_evaluations(b"\x01\x00", enc([1, 1]), 4)
    with pytest.raises(MalformedEncoding, match="witness value 1 is not reduced"):
        curve.fr_evaluations(struct.pack("<I", 1) + good, enc([1]) + R.to_bytes(32, "little"), 4)
    with pytest.raises(MalformedEncoding, match="power of two"):
        curve.fr_evaluations(struct.pack("<I", 1) + good, enc([1, 1]), 12)


# --- the witness as bytes and the provers ---------------------------------------------------------

def test_wtns_values_as_bytes_are_checked(tmp_path: Path, chain) -> None:
    _, z, _ = chain
    path = tmp_path / "w.wtns"
    path.write_bytes(wtns.wtns_to_bytes(z))
    assert wtns.read_wtns_bytes(path) == curve.fr_vector_to_bytes(z)
    assert curve.fr_vector_from_bytes(wtns.read_wtns_bytes(path)) == z == wtns.read_wtns(path)
    data = bytearray(path.read_bytes())
    data[-32 * 3:-32 * 2] = R.to_bytes(32, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(MalformedEncoding, match=f"wtns: section 2: value {len(z) - 3} is not reduced"):
        wtns.read_wtns_bytes(path)
    with pytest.raises(MalformedEncoding, match="not reduced"):
        wtns.read_wtns(path)


def test_streamed_and_in_memory_provers_agree_and_verify(tmp_path: Path, chain) -> None:
    cs, z, pk = chain
    path = tmp_path / "k.zkey"
    zkey.write_zkey(path, pk)
    expected = prove.prove(pk, z, 0x5EED, 0xBEEF)
    assert verify.verify(pk.vk, z[1:1 + pk.num_public], expected)
    got = prove.prove_streamed(zkey.ZkeyChunks(path), curve.fr_vector_to_bytes(z), 0x5EED, 0xBEEF, chunk_points=16)
    assert got == expected
    assert prove.prove(pk, z, 0x5EED, 0xBEF0) != expected


def test_fast_path_refuses_a_key_with_a_record_outside_the_domain(tmp_path: Path, chain) -> None:
    """A section-4 record naming constraint n: the fast path raises (MalformedEncoding from the native
    evaluation), and prove_snarkjs_files names the error through the reference path's zkey reader."""
    cs, z, pk = chain
    data = bytearray(zkey.zkey_to_bytes(pk))
    bf = _binfile.parse(bytes(data), "zkey", versions=(1,), what="t")
    off, _ = bf.sections[4][0]
    struct.pack_into("<I", data, off + 4 + 4, pk.domain_size)  # record 0: constraint = n
    paths = (tmp_path / "c.r1cs", tmp_path / "c.wtns", tmp_path / "c.zkey")
    paths[0].write_bytes(r1cs.r1cs_to_bytes(cs))
    paths[1].write_bytes(wtns.wtns_to_bytes(z))
    paths[2].write_bytes(bytes(data))
    with pytest.raises(MalformedEncoding, match="a constraint outside the domain"):
        interop._prove_fast(*paths)
    with pytest.raises(MalformedEncoding, match="out of range"):
        interop.prove_snarkjs_files(*paths)
