"""Proving through the real Envoy: /k, /check, /prove, /prove-tx with CBOR bodies; proofs checked by snarkjs."""

from __future__ import annotations

import json
from pathlib import Path

import cbor2
import httpx
import pytest

from teeprover import zkir
from teeprover.groth16 import encoding
from teeprover.groth16.verify import verify
from teeprover.keystore import read_key_dir
from teeprover.snarkjs.export import proof_json, public_json
from tests.support import npm
from tests.support.stack import SHARED_CACHE, Stack

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zkir"
LOCATION = "builtin/demo/arithmetic"


def _preimage(name: str = "arithmetic", location: str = LOCATION) -> zkir.ProofPreimage:
    data = json.loads((FIXTURES / f"{name}.preimage.json").read_text())
    data["key_location"] = location
    return zkir.ProofPreimage.from_json(json.dumps(data).encode())


def _post(http: httpx.Client, stack: Stack, path: str, body: bytes, ctype: str = "application/cbor") -> httpx.Response:
    return http.post(path, content=body, headers={"x-api-key": stack.api_key or "", "content-type": ctype})


def _public_inputs(name: str, preimage: zkir.ProofPreimage) -> list[int]:
    compiled = zkir.compile_circuit(zkir.load_circuit((FIXTURES / f"{name}.zkir.json").read_bytes()))
    return zkir.generate_witness(compiled, preimage)[1]


def test_k_answers_text(http: httpx.Client, stack: Stack) -> None:
    for name, ctype in (("arithmetic", "application/json"), ("range_checks", "application/json")):
        body = (FIXTURES / f"{name}.zkir.json").read_bytes()
        reply = _post(http, stack, "/k", body, ctype)
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"].startswith("text/plain")
        expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())["k"]
        assert reply.text == str(expected)
    cbor_body = zkir.load_circuit((FIXTURES / "arithmetic.zkir.json").read_bytes()).to_cbor()
    assert _post(http, stack, "/k", cbor_body).text == "10"


def test_k_rejects_garbage(http: httpx.Client, stack: Stack) -> None:
    reply = _post(http, stack, "/k", b"\xff\x00garbage")
    assert reply.status_code == 400 and reply.json()["error"] == "BadRequest"


def test_check_answers_cbor_list(http: httpx.Client, stack: Stack) -> None:
    reply = _post(http, stack, "/check", _preimage().to_cbor())
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/cbor"
    assert cbor2.loads(reply.content) == json.loads((FIXTURES / "arithmetic.expected.json").read_text())["check"]


def test_prove_returns_a_proof_that_snarkjs_accepts(http: httpx.Client, stack: Stack, tmp_path: Path) -> None:
    preimage = _preimage()
    reply = _post(http, stack, "/prove", zkir.ProveRequest(preimage).to_cbor())
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/cbor"
    proof = encoding.decode_proof(reply.content)
    assert encoding.encode_proof(proof) == reply.content  # byte-exact binary round trip
    keys = read_key_dir(SHARED_CACHE / "keys" / LOCATION, LOCATION)
    vk = encoding.decode_verifying_key(keys.verifier_key)
    public = _public_inputs("arithmetic", preimage)
    assert public[0] == preimage.binding_input  # the binding input is public input #0
    assert verify(vk, public, proof)
    assert not verify(vk, [public[0] + 1, *public[1:]], proof)
    (tmp_path / "proof.json").write_text(proof_json(proof))
    (tmp_path / "public.json").write_text(public_json(public))
    (tmp_path / "vk.json").write_bytes((SHARED_CACHE / "keys" / LOCATION / "verification_key.json").read_bytes())
    out = npm.snarkjs("groth16", "verify", str(tmp_path / "vk.json"), str(tmp_path / "public.json"),
                      str(tmp_path / "proof.json"))
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr


def test_binding_input_override_changes_public_input_zero(http: httpx.Client, stack: Stack) -> None:
    preimage = _preimage()
    reply = _post(http, stack, "/prove", zkir.ProveRequest(preimage, None, 99).to_cbor())
    assert reply.status_code == 200, reply.text
    keys = read_key_dir(SHARED_CACHE / "keys" / LOCATION, LOCATION)
    vk = encoding.decode_verifying_key(keys.verifier_key)
    public = _public_inputs("arithmetic", zkir.ProveRequest(preimage, None, 99).effective_preimage())
    assert public[0] == 99
    assert verify(vk, public, encoding.decode_proof(reply.content))


def test_prove_with_key_material_in_the_request(http: httpx.Client, stack: Stack) -> None:
    keys = read_key_dir(SHARED_CACHE / "keys" / LOCATION, LOCATION)
    material = zkir.ProvingKeyMaterial(prover_key=keys.prover_key, verifier_key=keys.verifier_key,
                                       ir_source=keys.circuit)
    reply = _post(http, stack, "/prove", zkir.ProveRequest(_preimage(location="anything"), material).to_cbor())
    assert reply.status_code == 200, reply.text


def test_unsatisfied_preimage_names_the_instruction(http: httpx.Client, stack: Stack) -> None:
    preimage = _preimage()
    bad = zkir.ProofPreimage.from_json(json.dumps({**json.loads(preimage.to_json()),
                                                   "public_transcript_inputs": ["15"]}).encode())
    reply = _post(http, stack, "/prove", zkir.ProveRequest(bad).to_cbor())
    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] == "BadRequest" and "instruction" in body["details"]


def test_unknown_key_location_is_404(http: httpx.Client, stack: Stack) -> None:
    reply = _post(http, stack, "/prove", zkir.ProveRequest(_preimage(location="builtin/nope")).to_cbor())
    assert reply.status_code == 404 and reply.json()["error"] == "NotFound"


@pytest.mark.parametrize("body", [b"", b"garbage", cbor2.dumps([1, 2]), cbor2.dumps(cbor2.CBORTag(0x7E000099, [1]))])
def test_prove_garbage_is_400(http: httpx.Client, stack: Stack, body: bytes) -> None:
    reply = _post(http, stack, "/prove", body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "BadRequest"


def test_prove_tx_is_deprecated_but_works(http: httpx.Client, stack: Stack) -> None:
    one = cbor2.loads(zkir.ProveRequest(_preimage()).to_cbor())
    reply = _post(http, stack, "/prove-tx", cbor2.dumps([one, one]))
    assert reply.status_code == 200, reply.text
    assert reply.headers["deprecation"].startswith("@")
    proofs = cbor2.loads(reply.content)
    assert len(proofs) == 2 and all(encoding.decode_proof(p) for p in proofs)


def test_prove_tx_errors_are_announced_as_deprecated_too(http: httpx.Client, stack: Stack) -> None:
    """Envoy adds the route's Deprecation/Link headers to error replies (the RPC cannot send headers
    before it fails without breaking the JSON error body)."""
    reply = _post(http, stack, "/prove-tx", b"garbage")
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "BadRequest" and reply.json()["request_id"]
    assert reply.headers["deprecation"] == "@1767225600"
    assert reply.headers["link"] == '</prove>; rel="successor-version"'
    ok = _post(http, stack, "/prove-tx", cbor2.dumps([cbor2.loads(zkir.ProveRequest(_preimage()).to_cbor())]))
    assert ok.status_code == 200 and ok.headers.get_list("deprecation") == ["@1767225600"]  # not doubled


def test_sealed_request_to_the_attested_key(http: httpx.Client, stack: Stack) -> None:
    """A wallet verifies the attestation, seals its preimage to the bound HPKE key, and gets a proof."""
    import base64
    import datetime as dt
    import os

    from teeprover import hpke
    from teeprover.attestation import binding_digest
    from teeprover.attestation import verify as verify_attestation

    nonce = os.urandom(32)
    doc = http.get("/attestation", params={"nonce": nonce.hex()}).json()
    meta = doc["metadata"]
    hpke_key = bytes.fromhex(meta["binding"]["hpke_public_key"])
    expected = binding_digest(nonce=nonce, tls_spki_sha256=None, hpke_public_key=hpke_key,
                              timestamp_ms=meta["timestamp_ms"])
    result = verify_attestation(base64.b64decode(doc["attestation"]), platform="simulated",
                                now=dt.datetime.now(dt.UTC), nonce=nonce, report_data=expected,
                                allow_simulated=True)
    assert result.ok, result.message
    sealed = hpke.seal(hpke_key, zkir.ProveRequest(_preimage()).to_cbor())
    reply = _post(http, stack, "/prove", sealed)
    assert reply.status_code == 200, reply.text
    keys = read_key_dir(SHARED_CACHE / "keys" / LOCATION, LOCATION)
    vk = encoding.decode_verifying_key(keys.verifier_key)
    assert verify(vk, _public_inputs("arithmetic", _preimage()), encoding.decode_proof(reply.content))
    # Sealed to some other key: a clear 400, not a crash.
    wrong = _post(http, stack, "/prove", hpke.seal(hpke.generate().public_bytes, b"x"))
    assert wrong.status_code == 400 and "does not open" in wrong.json()["message"]


def test_cli_remote_prove_sealed_refuses_simulated_unless_allowed(stack: Stack, tmp_path: Path) -> None:
    import subprocess
    import sys

    base = [sys.executable, "-m", "teeprover.cli", "prove", str(FIXTURES / "arithmetic.zkir.json"),
            str(Path(__file__).resolve().parents[2] / "examples" / "arithmetic.preimage.json"),
            "--url", stack.url, "--api-key", stack.api_key or "", "-o", str(tmp_path / "p.cbor"), "--seal"]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "NOT SECURE" in refused.stderr
    assert not (tmp_path / "p.cbor").exists()
    ok = subprocess.run([*base, "--allow-simulated"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    keys = read_key_dir(SHARED_CACHE / "keys" / LOCATION, LOCATION)
    proof = encoding.decode_proof((tmp_path / "p.cbor").read_bytes())
    assert verify(encoding.decode_verifying_key(keys.verifier_key), _public_inputs("arithmetic", _preimage()), proof)
