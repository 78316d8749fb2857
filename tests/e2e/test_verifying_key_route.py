"""GET /verifying-key/{key_location} (REST through Envoy, and gRPC): the key a wallet needs, public.

CBOR by default, snarkjs verification_key.json on ``Accept: application/json``; byte for byte
what ``teeprover setup`` wrote.  With it, ``prove --url --snarkjs DIR`` works without ``--keys``, and
``prove --url`` checks every proof the server returns; a location the server holds no key for is an error
before the witness is sent, and nothing is written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from teeprover.v1 import prover_pb2, prover_pb2_grpc
from tests.support.stack import REPO, SHARED_CACHE, Stack

pytestmark = pytest.mark.e2e

DEMO = "builtin/demo/arithmetic"
KEYS = SHARED_CACHE / "keys" / DEMO
FIXTURES = REPO / "tests" / "fixtures" / "zkir"


def test_rest_serves_cbor_by_default_and_snarkjs_json_on_accept_without_an_api_key(http: httpx.Client) -> None:
    cbor = http.get(f"/verifying-key/{DEMO}")
    assert cbor.status_code == 200, cbor.text
    assert cbor.headers["content-type"] == "application/cbor"
    assert cbor.content == (KEYS / "vk.cbor").read_bytes()
    snarkjs = http.get(f"/verifying-key/{DEMO}", headers={"accept": "application/json"})
    assert snarkjs.status_code == 200
    assert snarkjs.headers["content-type"] == "application/json"
    assert snarkjs.content == (KEYS / "verification_key.json").read_bytes()
    assert snarkjs.json()["protocol"] == "groth16" and snarkjs.json()["curve"] == "bls12381"


def test_unknown_and_malformed_locations_are_404_and_400(http: httpx.Client) -> None:
    missing = http.get("/verifying-key/no/such/circuit")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
    assert "no/such/circuit" in missing.json()["message"]
    bad = http.get("/verifying-key/bad!location")
    assert bad.status_code == 400 and bad.json()["error"] == "BadRequest"
    assert http.post(f"/verifying-key/{DEMO}").status_code == 405


def test_grpc_serves_the_same_bytes(stack: Stack) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports['prover_port']}") as channel:
        stub = prover_pb2_grpc.ProverStub(channel)
        cbor = stub.VerifyingKey(prover_pb2.VerifyingKeyRequest(key_location=DEMO), timeout=30)
        assert cbor.content_type == "application/cbor" and cbor.data == (KEYS / "vk.cbor").read_bytes()
        snarkjs = stub.VerifyingKey(prover_pb2.VerifyingKeyRequest(key_location=DEMO), timeout=30,
                                    metadata=(("accept", "application/json"),))
        assert json.loads(snarkjs.data) == json.loads((KEYS / "verification_key.json").read_text())
        with pytest.raises(grpc.RpcError) as missing:
            stub.VerifyingKey(prover_pb2.VerifyingKeyRequest(key_location="no/such"), timeout=30)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_remote_prove_writes_snarkjs_files_without_keys(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "snarkjs"
    proved = subprocess.run(
        [sys.executable, "-m", "teeprover.cli", "prove", str(FIXTURES / "arithmetic.zkir.json"),
         str(REPO / "examples" / "arithmetic.preimage.json"), "--url", stack.url, "--api-key", stack.api_key or "",
         "-o", str(tmp_path / "proof.cbor"), "--snarkjs", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proved.returncode == 0, proved.stderr
    assert json.loads((out / "verification_key.json").read_text()) == json.loads(
        (KEYS / "verification_key.json").read_text())
    checked = subprocess.run(
        [sys.executable, "-m", "teeprover.cli", "verify", "--vk", str(out / "verification_key.json"),
         "--proof", str(out / "proof.json"), "--public", str(out / "public.json")],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert checked.returncode == 0 and checked.stdout.strip() == "valid", checked.stdout + checked.stderr


def _prove_cli(stack: Stack, preimage: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "teeprover.cli", "prove", str(FIXTURES / "arithmetic.zkir.json"), str(preimage),
         "--url", stack.url, "--api-key", stack.api_key or "", "-o", str(out)],
        capture_output=True, text=True, timeout=120, cwd=REPO)


def test_remote_prove_checks_the_servers_proof_with_its_served_key(stack: Stack, tmp_path: Path) -> None:
    from teeprover.groth16 import encoding
    from teeprover.groth16.verify import verify

    proved = _prove_cli(stack, REPO / "examples" / "arithmetic.preimage.json", tmp_path / "proof.cbor")
    assert proved.returncode == 0, proved.stderr
    assert proved.stdout == f"proof written to {tmp_path / 'proof.cbor'}\n"  # checked: no "NOT verified"
    proof = encoding.decode_proof((tmp_path / "proof.cbor").read_bytes())
    assert verify(encoding.decode_verifying_key((KEYS / "vk.cbor").read_bytes()), [1234567, 14], proof)


def test_remote_prove_for_a_location_without_a_key_is_an_error_and_writes_nothing(stack: Stack,
                                                                                   tmp_path: Path) -> None:
    preimage = json.loads((REPO / "examples" / "arithmetic.preimage.json").read_text())
    preimage["key_location"] = "no/such/circuit"
    (tmp_path / "preimage.json").write_text(json.dumps(preimage))
    proved = _prove_cli(stack, tmp_path / "preimage.json", tmp_path / "proof.cbor")
    assert proved.returncode == 2 and proved.stdout == ""
    (line,) = proved.stderr.splitlines()
    assert line.startswith("teeprover: NoVerifyingKey: cannot check the server's proof: the server has no "
                           "verifying key for 'no/such/circuit' (404 NotFound: "), line
    assert not (tmp_path / "proof.cbor").exists()
