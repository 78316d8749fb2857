"""The prover's core (teeprover/proving.py) on real keys: where keys come from, and every way a request is refused.

Keys are set up for two fixture circuits from a small development ``.ptau``; the requests are the bodies a
wallet sends to ``/prove``, ``/prove-tx`` and ``/check``.  A proof is returned only after it verified.
"""

from __future__ import annotations

import random
from pathlib import Path

import cbor2
import pytest

from teeprover import zkir
from teeprover.errors import (
    Cancelled,
    CircuitError,
    InvalidInput,
    MalformedEncoding,
    NotFound,
    ProofVerificationFailed,
)
from teeprover.groth16 import encoding
from teeprover.groth16.verify import verify
from teeprover.keysetup import setup_keys
from teeprover.keystore import KeyStore, read_key_dir
from teeprover.proving import MAX_BATCH, Prover, circuit_k
from teeprover.snarkjs import ptau

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zkir"


def _preimage(name: str, **changes: object) -> zkir.ProofPreimage:
    pre = zkir.load_preimage((FIXTURES / f"{name}.preimage.json").read_bytes())
    fields = {f: getattr(pre, f) for f in ("inputs", "private_transcript", "public_transcript_inputs",
                                           "public_transcript_outputs", "binding_input",
                                           "communications_commitment", "key_location")}
    fields.update(changes)
    return zkir.ProofPreimage(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    """A key store holding the arithmetic and comparisons fixture circuits under their key locations."""
    root = tmp_path_factory.mktemp("keys")
    small = root / "dev7.ptau"
    ptau.generate_dev_ptau(7, small, random.Random(3))
    keys = KeyStore(root / "store")
    for name in ("arithmetic", "comparisons"):
        setup_keys((FIXTURES / f"{name}.zkir.json").read_bytes(), keys.path(f"fixtures/zkir/{name}"), ptau=small)
    return keys


def _material(store: KeyStore, name: str) -> zkir.ProvingKeyMaterial:
    files = read_key_dir(store.path(f"fixtures/zkir/{name}"))
    return zkir.ProvingKeyMaterial(prover_key=files.prover_key, verifier_key=files.verifier_key,
                                   ir_source=files.circuit)


def test_a_proof_from_the_key_store_verifies_with_the_expected_public_inputs(store: KeyStore) -> None:
    result = Prover(store).prove(zkir.ProveRequest(_preimage("arithmetic")))
    assert result.public_inputs == [1234567, 14] and result.k == 10
    assert verify(result.verifying_key, result.public_inputs, encoding.decode_proof(result.to_cbor()))
    assert set(result.timings) == {"compile", "witness", "keys", "prove", "verify"}


def test_key_material_in_the_request_needs_no_key_store_and_a_binding_input_override_is_public(
        store: KeyStore) -> None:
    request = zkir.ProveRequest(_preimage("arithmetic", key_location="anything"), _material(store, "arithmetic"), 99)
    result = Prover(None).prove(request)
    assert result.public_inputs == [99, 14]


@pytest.mark.parametrize(("material", "message"), [
    (zkir.ProvingKeyMaterial(prover_key=b"", verifier_key=b"", ir_source=b"{}"),
     "key material needs ir_source and prover_key"),
    (zkir.ProvingKeyMaterial(prover_key=b"pk", verifier_key=b"", ir_source=b""),
     "key material needs ir_source and prover_key"),
    (None, "no key material in the request and no key store on this prover"),
])
def test_a_request_without_usable_keys_is_invalid_input(material: zkir.ProvingKeyMaterial | None,
                                                         message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Prover(None).prove(zkir.ProveRequest(_preimage("arithmetic"), material))


def test_an_unknown_key_location_is_not_found(store: KeyStore) -> None:
    with pytest.raises(NotFound, match="no keys for key_location 'fixtures/zkir/none'"):
        Prover(store).prove(zkir.ProveRequest(_preimage("arithmetic", key_location="fixtures/zkir/none")))


def test_keys_of_another_circuit_are_refused_naming_both_shapes(store: KeyStore) -> None:
    other = _material(store, "comparisons")
    mixed = zkir.ProvingKeyMaterial(prover_key=other.prover_key, verifier_key=b"",
                                    ir_source=(FIXTURES / "arithmetic.zkir.json").read_bytes())
    with pytest.raises(InvalidInput, match="the proving key does not belong to this circuit") as err:
        Prover(None).prove(zkir.ProveRequest(_preimage("arithmetic"), mixed))
    assert set(err.value.details) == {"key_variables", "circuit_variables", "key_public", "circuit_public"}
    assert err.value.details["key_variables"] != err.value.details["circuit_variables"]


def test_a_verifying_key_that_does_not_match_the_proving_key_means_no_proof(store: KeyStore,
                                                                            tmp_path: Path) -> None:
    # Same circuit, keys from another set-up (other toxic waste): the proof is made, fails our own check,
    # and is never returned.
    small = tmp_path / "other.ptau"
    ptau.generate_dev_ptau(4, small, random.Random(4))
    setup_keys((FIXTURES / "arithmetic.zkir.json").read_bytes(), tmp_path / "k", ptau=small)
    good = _material(store, "arithmetic")
    foreign_vk = read_key_dir(tmp_path / "k").verifier_key
    assert foreign_vk != good.verifier_key
    mixed = zkir.ProvingKeyMaterial(prover_key=good.prover_key, verifier_key=foreign_vk, ir_source=good.ir_source)
    with pytest.raises(ProofVerificationFailed, match="did not verify against the verifying key; not returned"):
        Prover(None).prove(zkir.ProveRequest(_preimage("arithmetic"), mixed))


@pytest.mark.parametrize(("stop_at", "stage"), [(1, "witness"), (2, "key loading"), (3, "proving")])
def test_a_stopped_job_is_cancelled_between_stages(store: KeyStore, stop_at: int, stage: str) -> None:
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) >= stop_at

    with pytest.raises(Cancelled, match=f"cancelled before {stage}"):
        Prover(store).prove(zkir.ProveRequest(_preimage("arithmetic")), should_stop)


def test_prove_tx_answers_one_proof_per_request_in_order(store: KeyStore) -> None:
    requests = [zkir.ProveRequest(_preimage("arithmetic")), zkir.ProveRequest(_preimage("comparisons"))]
    body = cbor2.dumps([cbor2.loads(r.to_cbor()) for r in requests])
    proofs = cbor2.loads(Prover(store).prove_tx(body))
    assert len(proofs) == 2
    for request, proof in zip(requests, proofs, strict=True):
        single = Prover(store).prove(request)
        assert verify(single.verifying_key, single.public_inputs, encoding.decode_proof(proof))


@pytest.mark.parametrize(("body", "message"), [
    (b"\xff garbage", "prove-tx body must be a CBOR array of prove requests"),
    (cbor2.dumps([]), "must be a CBOR array of 1..64 prove requests"),
    (cbor2.dumps({"a": 1}), "must be a CBOR array of 1..64 prove requests"),
    (cbor2.dumps([0] * (MAX_BATCH + 1)), "must be a CBOR array of 1..64 prove requests"),
])
def test_prove_tx_refuses_a_body_that_is_not_a_batch(store: KeyStore, body: bytes, message: str) -> None:
    with pytest.raises(MalformedEncoding, match=message):
        Prover(store).prove_tx(body)


def test_prove_tx_names_the_item_whose_preimage_does_not_satisfy_its_circuit(store: KeyStore) -> None:
    bad = zkir.ProveRequest(_preimage("arithmetic", public_transcript_inputs=(15,)))
    body = cbor2.dumps([cbor2.loads(zkir.ProveRequest(_preimage("arithmetic")).to_cbor()),
                        cbor2.loads(bad.to_cbor())])
    with pytest.raises(CircuitError) as err:
        Prover(store).prove_tx(body)
    assert err.value.details["transaction_item"] == 1


def test_check_takes_every_body_form(store: KeyStore) -> None:
    prover = Prover(store)
    pre = _preimage("arithmetic")
    assert prover.check(pre.to_cbor()) == [0]  # the tagged preimage: circuit from the key store
    assert prover.check(zkir.ProveRequest(pre, _material(store, "arithmetic")).to_cbor()) == [0]  # a /prove body
    assert prover.check(pre.to_midnight()) == [0]  # Midnight's own preimage encoding, as its wallets write it
    wrong = prover.check(_preimage("arithmetic", public_transcript_inputs=(15,)).to_cbor())
    assert wrong != [0] and not all(isinstance(a, int) for a in wrong)
    with pytest.raises(MalformedEncoding):
        prover.check(b"\x83\x01\x02\x03")  # an array of three that is no prove request


def test_circuit_k_of_a_circuit_and_of_garbage() -> None:
    assert circuit_k((FIXTURES / "arithmetic.zkir.json").read_bytes()) == 10
    with pytest.raises(MalformedEncoding):
        circuit_k(b"not a circuit")
