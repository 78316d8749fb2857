"""snarkjs .ptau files: development generation, reading, and keys derived from them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from teeprover.curve import R
from teeprover.errors import MalformedEncoding
from teeprover.groth16 import prove, setup, verify
from teeprover.snarkjs import ptau
from tests.support import npm
from tests.unit.test_groth16 import squaring_chain


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
    assert sum(l * pow(w, i, R) for i, l in enumerate(lag)) % R == 12345
    assert sum(l * pow(w, i, R) for i, l in enumerate(lag)) % R != 12346


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


@pytest.mark.snarkjs
@pytest.mark.skipif(not npm.npm_available(), reason="node/npm not installed")
def test_snarkjs_reads_dev_ptau_but_refuses_it_as_uncontributed(dev_ptau: Path) -> None:
    """snarkjs stops at the empty contribution record: documented behaviour for dev parameters."""
    res = npm.snarkjs("powersoftau", "verify", str(dev_ptau))
    text = res.stdout + res.stderr
    assert "no contribution" in text.lower(), text
