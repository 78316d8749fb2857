"""snarkjs .ptau files: development generation, reading, and keys derived from them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from teeprover.curve import R
from teeprover.errors import MalformedEncoding
from teeprover.groth16 import prove, setup, verify
from teeprover.snarkjs import contribution, ptau
from tests.support import npm
from tests.support.circuits import squaring_chain


@pytest.fixture(scope="module")
def dev_ptau(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ptau") / "dev4.ptau"
    ptau.generate_dev_ptau(4, path, random.Random(7))
    return path


def test_dev_ptau_lagrange_sections_match_the_secrets(dev_ptau: Path) -> None:
    rng = random.Random(7)
    tau, alpha, beta = (rng.randrange(2, R) for _ in range(3))
    pt = ptau.read_ptau(dev_ptau)
    assert pt.power == 4 and pt.has_phase2
    for n in (4, 16):
        got = pt.lagrange_params(n)
        want = ptau.lagrange_params_from_secrets(n, tau, alpha, beta)
        for name in ("tau_g1", "tau_g2", "alpha_tau_g1", "beta_tau_g1", "h_g1"):
            assert list(getattr(got, name)) == list(getattr(want, name)), name
        assert got.alpha_g1 == want.alpha_g1 and got.beta_g2 == want.beta_g2


def test_lagrange_values_sum_to_one_and_interpolate_tau() -> None:
    from teeprover.curve import root_of_unity
    lag = ptau.lagrange_values(8, 12345)
    assert sum(lag) % R == 1
    w = root_of_unity(8)
    assert sum(v * pow(w, i, R) for i, v in enumerate(lag)) % R == 12345
    assert sum(v * pow(w, i, R) for i, v in enumerate(lag)) % R != 12346


def test_keys_from_ptau_prove_and_verify(dev_ptau: Path) -> None:
    r1cs, z = squaring_chain(10)  # 11 constraints + 2 public + 1 = 14 -> n = 16
    pk = setup.generate_keys(r1cs, ptau.read_ptau(dev_ptau).lagrange_params(r1cs.domain_size()))
    proof = prove.create_random_proof(pk, z)
    assert verify.verify(pk.vk, z[1:3], proof)
    assert not verify.verify(pk.vk, [z[1], z[2] + 1], proof)


def test_ptau_too_small_for_circuit_raises(dev_ptau: Path) -> None:
    with pytest.raises(MalformedEncoding):
        ptau.read_ptau(dev_ptau).lagrange_params(32)


def test_write_read_round_trip(tmp_path: Path, dev_ptau: Path) -> None:
    pt = ptau.read_ptau(dev_ptau)
    out = tmp_path / "copy.ptau"
    ptau.write_ptau(out, pt.power, {k: v for k, v in pt.sections.items() if k != 1})
    assert out.read_bytes() == dev_ptau.read_bytes()


@pytest.mark.parametrize("junk", [b"", b"ptau", b"zkey" + bytes(20), b"ptau\x01\x00\x00\x00\x05\x00\x00\x00"])
def test_reading_junk_raises(tmp_path: Path, junk: bytes) -> None:
    p = tmp_path / "junk.ptau"
    p.write_bytes(junk)
    with pytest.raises(MalformedEncoding):
        ptau.read_ptau(p)


def test_blake2b_mid_state_continues_to_the_standard_digest() -> None:
    """The partial hash we store must resume to exactly hashlib's BLAKE2b-512 (what snarkjs recomputes)."""
    import hashlib
    data = bytes(range(256)) * 3
    for cut in (0, 1, 127, 128, 129, 500, len(data)):
        h = contribution._Blake2b512()
        h.update(data[:cut])
        state = h.partial()
        assert len(state) == 216
        h.update(data[cut:])
        assert h.digest() == hashlib.blake2b(data, digest_size=64).digest()
    assert contribution._Blake2b512().digest() == hashlib.blake2b(b"", digest_size=64).digest()
    other = contribution._Blake2b512()
    other.update(data[:-1] + b"x")
    assert other.digest() != hashlib.blake2b(data, digest_size=64).digest()


def test_hash_to_g2_lands_in_g2_and_depends_on_the_hash() -> None:
    from teeprover import curve
    p = contribution._hash_to_g2(bytes(range(64)))
    q = contribution._hash_to_g2(bytes(range(1, 65)))
    assert p.is_in_subgroup() and q.is_in_subgroup()
    assert p != q and not curve.g2_is_identity(p)


@pytest.fixture(scope="module")
def dev_ptau10(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ptau") / "dev10.ptau"
    ptau.generate_dev_ptau(10, path, random.Random(10))
    return path


@pytest.mark.snarkjs
@pytest.mark.skipif(not npm.npm_available(), reason="node/npm not installed")
def test_snarkjs_powersoftau_verify_accepts_dev_ptau(dev_ptau10: Path) -> None:
    """A power-10 dev file (usable for circuits up to 2^10) passes snarkjs's full check:
    the contribution record, the hash chain, the powers and the prepared Lagrange sections."""
    res = npm.snarkjs("powersoftau", "verify", str(dev_ptau10))
    text = res.stdout + res.stderr
    assert res.returncode == 0 and "Powers of Tau Ok!" in text, text[-3000:]
    assert ptau.DEV_CONTRIBUTION_NAME in text


@pytest.mark.snarkjs
@pytest.mark.skipif(not npm.npm_available(), reason="node/npm not installed")
def test_snarkjs_powersoftau_verify_rejects_tampered_contribution(dev_ptau: Path, tmp_path: Path) -> None:
    pt = ptau.read_ptau(dev_ptau)
    contrib = bytearray(pt.sections[7])
    # the stored next-challenge hash sits after: count(4) + 3 G1 + 2 G2 + key (6 G1 + 3 G2) + partial hash (216)
    pos = 4 + 3 * 96 + 2 * 192 + 6 * 96 + 3 * 192 + 216
    contrib[pos] ^= 1
    bad = tmp_path / "bad.ptau"
    ptau.write_ptau(bad, pt.power, {**{k: v for k, v in pt.sections.items() if k != 1}, 7: bytes(contrib)})
    res = npm.snarkjs("powersoftau", "verify", str(bad))
    text = res.stdout + res.stderr
    assert "Powers of Tau Ok!" not in text and "does not match the next challenge" in text, text[-3000:]
