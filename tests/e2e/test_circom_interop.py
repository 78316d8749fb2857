"""circom/snarkjs interoperability, both ways, with the real tools (snarkjs 0.7.6, circom2 0.2.23).

A circom circuit compiled with ``--prime bls12381``, its witness from ``snarkjs wtns
calculate`` and keys from ``snarkjs groth16 setup`` + ``zkey contribute`` over a
ptau that snarkjs made itself (new, contribute, prepare phase2; cached under
``.cache/snarkjs-ptau``).  Then: our proof passes ``snarkjs groth16 verify``; a
snarkjs proof passes our verifier; a mutated public input fails both.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench import _circom
from teeprover.errors import CircuitError, InvalidInput
from teeprover.groth16.verify import verify
from teeprover.snarkjs import export, interop, wtns, zkey
from teeprover.snarkjs.r1cs import read_r1cs
from tests.support import npm

pytestmark = [
    pytest.mark.snarkjs,
    pytest.mark.skipif(not npm.npm_available(), reason="node/npm not installed"),
    pytest.mark.timeout(900),
]

PTAU_POWER = 8  # snarkjs prepare phase2: ~10 s cold at power 8, cached afterwards
CHAIN = 100  # constraints: 100 + 2 public + 1 -> domain 128


@pytest.fixture(scope="module")
def chain() -> _circom.Circuit:
    return _circom.build_circuit(f"e2e_chain{CHAIN}", _circom.squaring_chain_source(CHAIN), {"x": "3"},
                                 _circom.snarkjs_ptau(PTAU_POWER))


@pytest.fixture(scope="module")
def multiplier() -> _circom.Circuit:
    source = (_circom.FIXTURES / "multiplier.circom").read_text()
    return _circom.build_circuit("e2e_multiplier", source, {"a": "3", "b": "11", "c": "17"},
                                 _circom.snarkjs_ptau(PTAU_POWER))


@pytest.fixture(scope="module", params=["chain", "multiplier"])
def circuit(request: pytest.FixtureRequest) -> _circom.Circuit:
    return request.getfixturevalue(request.param)


@pytest.fixture()
def our_outputs(circuit: _circom.Circuit, tmp_path: Path) -> Path:
    proof, public, vk = interop.prove_snarkjs_files(circuit.r1cs, circuit.wtns, circuit.zkey)
    interop.write_snarkjs_outputs(tmp_path, proof, public, vk)
    return tmp_path


def _mutate_public(src: Path, dst: Path) -> Path:
    pub = json.loads(src.read_text())
    pub[0] = str(int(pub[0]) + 1)
    dst.write_text(json.dumps(pub))
    return dst


def test_imported_r1cs_and_witness_agree_with_snarkjs(circuit: _circom.Circuit) -> None:
    r1cs = read_r1cs(circuit.r1cs)
    z = wtns.read_wtns(circuit.wtns)
    r1cs.check_witness(z)
    info = _circom.snarkjs("r1cs", "info", str(circuit.r1cs)).stdout
    assert f"# of Constraints: {r1cs.num_constraints}" in info
    assert f"# of Wires: {r1cs.num_variables}" in info


def test_our_proof_passes_snarkjs_verify(circuit: _circom.Circuit, our_outputs: Path) -> None:
    assert _circom.snarkjs_verify(our_outputs / "verification_key.json", our_outputs / "public.json",
                                  our_outputs / "proof.json")
    # ... also against the key snarkjs exported itself
    assert _circom.snarkjs_verify(circuit.vk_json, our_outputs / "public.json", our_outputs / "proof.json")


def test_our_verification_key_json_is_byte_identical_to_snarkjs_export(circuit: _circom.Circuit,
                                                                       our_outputs: Path) -> None:
    assert (our_outputs / "verification_key.json").read_text() == circuit.vk_json.read_text()


def test_snarkjs_proof_passes_our_verifier(circuit: _circom.Circuit, tmp_path: Path) -> None:
    _circom.snarkjs("groth16", "prove", str(circuit.zkey), str(circuit.wtns),
                    str(tmp_path / "proof.json"), str(tmp_path / "public.json"))
    proof = export.proof_from_json((tmp_path / "proof.json").read_text())
    public = export.public_from_json((tmp_path / "public.json").read_text())
    assert verify(export.verifying_key_from_json(circuit.vk_json.read_text()), public, proof)
    assert verify(zkey.read_zkey(circuit.zkey).vk, public, proof)


def test_mutated_public_input_fails_snarkjs_and_our_verifier(circuit: _circom.Circuit, our_outputs: Path,
                                                             tmp_path: Path) -> None:
    bad = _mutate_public(our_outputs / "public.json", tmp_path / "bad_public.json")
    assert not _circom.snarkjs_verify(our_outputs / "verification_key.json", bad, our_outputs / "proof.json")
    vk = export.verifying_key_from_json((our_outputs / "verification_key.json").read_text())
    proof = export.proof_from_json((our_outputs / "proof.json").read_text())
    assert verify(vk, export.public_from_json((our_outputs / "public.json").read_text()), proof)
    assert not verify(vk, export.public_from_json(bad.read_text()), proof)


def test_snarkjs_proof_with_mutated_public_input_fails_our_verifier(circuit: _circom.Circuit,
                                                                    tmp_path: Path) -> None:
    _circom.snarkjs("groth16", "prove", str(circuit.zkey), str(circuit.wtns),
                    str(tmp_path / "proof.json"), str(tmp_path / "public.json"))
    bad = _mutate_public(tmp_path / "public.json", tmp_path / "bad.json")
    assert not _circom.snarkjs_verify(circuit.vk_json, bad, tmp_path / "proof.json")
    vk = export.verifying_key_from_json(circuit.vk_json.read_text())
    assert not verify(vk, export.public_from_json(bad.read_text()),
                      export.proof_from_json((tmp_path / "proof.json").read_text()))


def test_witness_that_does_not_satisfy_the_circuit_is_refused(chain: _circom.Circuit, tmp_path: Path) -> None:
    z = wtns.read_wtns(chain.wtns)
    z[-1] = (z[-1] + 1)  # a private signal
    bad = tmp_path / "bad.wtns"
    bad.write_bytes(wtns.wtns_to_bytes(z))
    with pytest.raises(CircuitError) as err:
        interop.prove_snarkjs_files(chain.r1cs, bad, chain.zkey)
    assert "not satisfied" in err.value.message and err.value.constraint is not None


def test_zkey_of_another_circuit_is_refused(chain: _circom.Circuit, multiplier: _circom.Circuit) -> None:
    with pytest.raises(InvalidInput, match="not made for this r1cs"):
        interop.prove_snarkjs_files(multiplier.r1cs, multiplier.wtns, chain.zkey)


def test_snarkjs_groth16_setup_accepts_our_dev_ptau(tmp_path: Path) -> None:
    """The bench makes keys for k >= 15 from generate_dev_ptau: snarkjs must take it, and proofs must check."""
    from teeprover.snarkjs.ptau import generate_dev_ptau

    ptau = tmp_path / "dev7.ptau"
    generate_dev_ptau(7, ptau)
    c = _circom.build_circuit("dev", _circom.squaring_chain_source(50), {"x": "5"}, ptau, cache=tmp_path / "c")
    proof, public, vk = interop.prove_snarkjs_files(c.r1cs, c.wtns, c.zkey)
    interop.write_snarkjs_outputs(tmp_path / "out", proof, public, vk)
    assert _circom.snarkjs_verify(c.vk_json, tmp_path / "out" / "public.json", tmp_path / "out" / "proof.json")
    shutil.rmtree(tmp_path / "c")


def test_snarkjs_proves_with_a_zkey_we_wrote(chain: _circom.Circuit, tmp_path: Path) -> None:
    """Our zkey writer round-trips: snarkjs proves with it and the proof checks under the same vk."""
    pk = zkey.read_zkey(chain.zkey)
    ours = tmp_path / "ours.zkey"
    zkey.write_zkey(ours, pk)
    _circom.snarkjs("groth16", "prove", str(ours), str(chain.wtns),
                    str(tmp_path / "p.json"), str(tmp_path / "pub.json"))
    assert _circom.snarkjs_verify(chain.vk_json, tmp_path / "pub.json", tmp_path / "p.json")
