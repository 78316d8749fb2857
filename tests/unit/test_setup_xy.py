"""Setup on byte arrays (groth16.setup.setup_xy, snarkjs.zkey.write_zkey_xy, Ptau.lagrange_xy).

The streamed key is compared byte for byte with a ``.zkey`` written from a *reference* setup made here
of point objects and textbook formulas (one MSM a signal, one multiplication a point): independent of
the byte path's grouping in arrays, native sums and native scaling, so an error in any of them shows.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from teeprover import curve
from teeprover.curve import R
from teeprover.errors import CircuitTooLarge, MalformedEncoding
from teeprover.groth16 import encoding, qap, setup
from teeprover.groth16.matrices import Matrices
from teeprover.groth16.prove import prove
from teeprover.groth16.types import LagrangeParams, LagrangeXY, ProvingKey, VerifyingKey
from teeprover.groth16.verify import verify
from teeprover.r1cs import R1CS, Constraint
from teeprover.snarkjs import interop, ptau, zkey
from teeprover.snarkjs.export import verification_key_json
from teeprover.snarkjs.r1cs import r1cs_to_bytes
from teeprover.snarkjs.wtns import wtns_to_bytes
from tests.support import npm
from tests.support.circuits import squaring_chain

DELTA = 0x1234_5678_9ABC_DEF0_0FED_CBA9_8765_4321


def _lin(points: list, coeffs: list[int], zero: object, msm: object) -> object:
    return msm(points, curve.msm_scalars(coeffs)) if points else zero  # type: ignore[operator]


def reference_key(r1cs: R1CS, params: LagrangeParams, delta: int) -> ProvingKey:
    """Groth16 setup from the definitions, with point objects: for signal s, A_s = sum A[c][s] L_c(tau),
    B_s likewise in G1 and G2, and (beta A_s + alpha B_s + C_s) over delta (private s) or as IC (public s)."""
    n, n_vars, n_pub = params.domain_size, r1cs.num_variables, r1cs.num_public
    coeffs = qap.constraint_coeffs(r1cs)
    terms: dict[str, list[list[tuple[object, int]]]] = {q: [[] for _ in range(n_vars)] for q in ("a", "b1", "b2", "k")}
    for cf in coeffs:
        c, s, v = cf.constraint, cf.signal, cf.value
        if cf.matrix == 0:
            terms["a"][s].append((params.tau_g1[c], v))
            terms["k"][s].append((params.beta_tau_g1[c], v))
        else:
            terms["b1"][s].append((params.tau_g1[c], v))
            terms["b2"][s].append((params.tau_g2[c], v))
            terms["k"][s].append((params.alpha_tau_g1[c], v))
    for c, con in enumerate(r1cs.constraints):
        for s, v in con.c.items():
            if v % R:
                terms["k"][s].append((params.tau_g1[c], v % R))

    def g1(t: list[tuple[object, int]]) -> curve.G1:
        return _lin([p for p, _ in t], [v for _, v in t], curve.g1_identity(), curve.msm_g1)  # type: ignore[return-value]

    def g2(t: list[tuple[object, int]]) -> curve.G2:
        return _lin([p for p, _ in t], [v for _, v in t], curve.g2_identity(), curve.msm_g2)  # type: ignore[return-value]

    d_inv = pow(delta, -1, R)
    vk = VerifyingKey(alpha_g1=params.alpha_g1, beta_g2=params.beta_g2, gamma_g2=curve.g2_generator(),
                      delta_g2=curve.g2_mul(curve.g2_generator(), delta),
                      ic=tuple(g1(terms["k"][s]) for s in range(n_pub + 1)))
    return ProvingKey(vk=vk, beta_g1=params.beta_g1, delta_g1=curve.g1_mul(curve.g1_generator(), delta),
                      num_variables=n_vars, num_public=n_pub, domain_size=n, coeffs=coeffs,
                      a_query=tuple(g1(t) for t in terms["a"]), b_g1_query=tuple(g1(t) for t in terms["b1"]),
                      b_g2_query=tuple(g2(t) for t in terms["b2"]),
                      c_query=tuple(curve.g1_mul(g1(t), d_inv) for t in terms["k"][n_pub + 1:]),
                      h_query=tuple(curve.g1_mul(p, d_inv) for p in params.h_g1))


def mixed_circuit() -> tuple[R1CS, list[int]]:
    """A squaring chain (every constraint's constant in C: IC[0] is an MSM) plus constraints with
    coefficients other than +-1 in A, B (so in G2 too) and C, on public and private signals, a zero
    coefficient, and a variable no constraint names (its points are the identity)."""
    base, z = squaring_chain(40)
    v = len(z)
    x, y, w = 5, 7, 11
    t = (3 * x + 2 * y) * (R - w) % R
    z = [*z, x, y, w, t, 0]  # v: x, v+1: y, v+2: w, v+3: t, v+4: unused
    cons = [*base.constraints,
            Constraint({v: 3, v + 1: 2, 1: 0}, {v + 2: R - 1}, {v + 3: 1}),  # (3x + 2y + 0 out) * (-w) = t
            Constraint({v: 2}, {v + 1: 5}, {v + 3: 0, 0: 10 * x * y % R}),  # (2x) * (5y) = 10xy
            Constraint({1: 4}, {0: 1}, {1: 4})]  # (4 out) * 1 = 4 out
    r1cs = R1CS(num_variables=v + 5, num_public=base.num_public, constraints=tuple(cons))
    r1cs.check_witness(z)
    return r1cs, z


CIRCUITS = {"chain": lambda: squaring_chain(60), "mixed": mixed_circuit}


@pytest.fixture(scope="module")
def dev_ptau(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ptau") / "dev7.ptau"
    ptau.generate_dev_ptau(7, path, random.Random(77))
    return path


@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_streamed_zkey_equals_the_reference_setup_byte_for_byte(name: str, dev_ptau: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(setup, "_CHUNK", 8)  # the chunked MSM (IC[0] sums ~60 points) takes several chunks
    r1cs, z = CIRCUITS[name]()
    n = r1cs.domain_size()
    pt = ptau.read_ptau(dev_ptau)
    toxic = setup.ToxicWaste(DELTA)
    key = setup.setup_xy(r1cs, pt.lagrange_xy(n), toxic)
    streamed, reference = tmp_path / "streamed.zkey", tmp_path / "reference.zkey"
    zkey.write_zkey_xy(streamed, key)
    zkey.write_zkey(reference, reference_key(r1cs, pt.lagrange_params(n), DELTA))
    assert streamed.read_bytes() == reference.read_bytes()
    # the object API is the same setup
    assert zkey.zkey_to_bytes(setup.setup(r1cs, pt.lagrange_params(n), toxic)) == streamed.read_bytes()
    # and the key proves: our verifier accepts, a wrong public input is refused
    pk = zkey.read_zkey(streamed)
    proof = prove(pk, z, 1 + random.randrange(R - 1), 1 + random.randrange(R - 1))
    public = z[1:r1cs.num_public + 1]
    assert verify(key.verifying_key(), public, proof)
    assert not verify(key.verifying_key(), [(public[0] + 1) % R, *public[1:]], proof)


@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_stored_key_from_bytes_equals_the_one_from_point_objects(name: str, dev_ptau: Path) -> None:
    """keysetup stores setup_xy's key without making point objects (encode_proving_key_xy): the same CBOR
    as the reference key's encoded from objects, and it decodes into a key that proves."""
    r1cs, z = CIRCUITS[name]()
    n = r1cs.domain_size()
    pt = ptau.read_ptau(dev_ptau)
    coeffs = qap.constraint_coeffs(r1cs)
    data = encoding.encode_proving_key_xy(setup.setup_xy(r1cs, pt.lagrange_xy(n), setup.ToxicWaste(DELTA)), coeffs)
    assert data == encoding.encode_proving_key(reference_key(r1cs, pt.lagrange_params(n), DELTA))
    pk = encoding.decode_proving_key(data)
    assert verify(pk.vk, z[1:r1cs.num_public + 1], prove(pk, z, 3, 4))


def test_the_circuits_cover_every_path() -> None:
    """What the comparison above relies on: non-+-1 coefficients in A, B and C, and IC[0] as an MSM."""
    r1cs, _ = mixed_circuit()
    m = Matrices.from_r1cs(r1cs)
    assert {int(x) for x in m.ab.matrix[m.ab.unit == 0]} == {0, 1}
    assert (m.c.unit == 0).any() and (m.c.signal[m.c.unit == 0] == 0).any()
    assert len(m.ab) == len(qap.constraint_coeffs(r1cs))
    assert [m.ab.coefficient(j) for j in range(len(m.ab))] == [c.value for c in qap.constraint_coeffs(r1cs)]


def test_lagrange_xy_is_lagrange_params_as_bytes(dev_ptau: Path) -> None:
    pt = ptau.read_ptau(dev_ptau)
    for n in (1, 2, 32, 128):
        got, want = pt.lagrange_xy(n), LagrangeXY.from_params(pt.lagrange_params(n))
        assert vars(got) == vars(want)


def test_lagrange_xy_refuses_a_domain_the_ptau_cannot_serve(dev_ptau: Path, tmp_path: Path) -> None:
    pt = ptau.read_ptau(dev_ptau)
    with pytest.raises(MalformedEncoding, match="cannot serve a domain of size 256"):
        pt.lagrange_xy(256)
    with pytest.raises(MalformedEncoding, match="cannot serve"):
        pt.lagrange_xy(48)
    unprepared = tmp_path / "phase1.ptau"
    ptau.write_ptau(unprepared, pt.power, {k: v for k, v in pt.sections.items() if k not in (1, 12, 13, 14, 15)})
    with pytest.raises(MalformedEncoding, match="not prepared for phase 2"):
        ptau.read_ptau(unprepared).lagrange_xy(64)
    short = tmp_path / "short.ptau"
    ptau.write_ptau(short, pt.power, {**{k: v for k, v in pt.sections.items() if k != 1},
                                      12: bytes(pt.sections[12])[:-96]})
    with pytest.raises(MalformedEncoding, match="section 12 is too short"):
        ptau.read_ptau(short).lagrange_xy(128)


def test_setup_xy_refuses_parameters_of_another_size(dev_ptau: Path) -> None:
    r1cs, _ = squaring_chain(60)
    params = ptau.read_ptau(dev_ptau).lagrange_xy(128)  # the chain needs 64
    with pytest.raises(CircuitTooLarge):
        setup.setup_xy(r1cs, params, setup.ToxicWaste(DELTA))


@pytest.mark.snarkjs
@pytest.mark.skipif(not npm.npm_available(), reason="node/npm not installed")
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_snarkjs_proves_with_the_streamed_zkey_and_verifies_ours(name: str, dev_ptau: Path, tmp_path: Path) -> None:
    from bench import _circom

    r1cs, z = CIRCUITS[name]()
    key = setup.setup_xy(r1cs, ptau.read_ptau(dev_ptau).lagrange_xy(r1cs.domain_size()),
                         setup.random_toxic_waste())
    paths = {x: tmp_path / f"main.{x}" for x in ("r1cs", "wtns", "zkey")}
    paths["r1cs"].write_bytes(r1cs_to_bytes(r1cs))
    paths["wtns"].write_bytes(wtns_to_bytes(z))
    zkey.write_zkey_xy(paths["zkey"], key)
    vk_json = tmp_path / "vk.json"
    vk_json.write_text(verification_key_json(key.verifying_key()))
    # snarkjs proves with our key, and its proof checks under the key's verifying key
    _circom.snarkjs("groth16", "prove", str(paths["zkey"]), str(paths["wtns"]),
                    str(tmp_path / "p.json"), str(tmp_path / "pub.json"))
    assert _circom.snarkjs_verify(vk_json, tmp_path / "pub.json", tmp_path / "p.json")
    # and snarkjs accepts our proof with that key
    proof, public, vk = interop.prove_snarkjs_files(paths["r1cs"], paths["wtns"], paths["zkey"])
    interop.write_snarkjs_outputs(tmp_path / "ours", proof, public, vk)
    assert _circom.snarkjs_verify(vk_json, tmp_path / "ours" / "public.json", tmp_path / "ours" / "proof.json")
