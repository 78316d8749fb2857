"""Real wallet transactions proved through REST with built-in keys: a wallet sends only the preimage.

The preimages are what ``@midnight-ntwrk/ledger-v8`` hands a proof server for a zswap output, a zswap
spend and a dust spend (:mod:`tests.support.midnight_wallet`).  The stack sets up the built-in keys in the
background from the (cached) development parameters; until a key is ready, a prove for it answers 503 with
``Retry-After`` naming it.  Each proof is checked by our verifier and by ``snarkjs groth16 verify``, its
public input #0 is the binding input, and Midnight's own ``check`` accepts the same preimage.

The zswap output (k = 17) runs in the default suite; the spends (k = 18, k = 15 for dust) are ``slow``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from teeprover import zkir
from teeprover.groth16 import encoding
from teeprover.groth16.verify import verify
from teeprover.keystore import read_key_dir
from teeprover.snarkjs.export import proof_json, public_json
from tests.support import npm
from tests.support.midnight import MidnightOracle
from tests.support.midnight_wallet import midnight_check, read_wallet_preimages
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.e2e

OUTPUT = "midnight/zswap/output"
SETUP_TIMEOUT = 1800.0  # a cold cache generates the development parameters for k = 17 first


@pytest.fixture(scope="module")
def builtin_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Path]]:
    tmp = tmp_path_factory.mktemp("builtin")
    keys = tmp / "keys"  # a fresh key store: the set-up always runs, so the 503 is observable
    with running_stack(tmp, TEEPROVER_BUILTIN_KEYS=OUTPUT, TEEPROVER_KEYS_DIR=str(keys),
                       TEEPROVER_NUM_WORKERS="1") as stack:
        yield stack, keys


def _prove(http: httpx.Client, stack: Stack, request: zkir.ProveRequest) -> httpx.Response:
    return http.post("/prove", content=request.to_cbor(),
                     headers={"x-api-key": stack.api_key or "", "content-type": "application/cbor"})


def _wait_ready(http: httpx.Client, location: str) -> None:
    deadline = time.monotonic() + SETUP_TIMEOUT
    while time.monotonic() < deadline:
        state = http.get("/ready").json().get("builtin_keys", {}).get(location)
        if state == "ready":
            return
        assert state in ("pending", "setting_up"), f"{location}: {state}"
        time.sleep(2)
    pytest.fail(f"{location} was not set up within {SETUP_TIMEOUT} s")


def _check_proof(keys: Path, location: str, request: zkir.ProveRequest, body: bytes, tmp_path: Path) -> None:
    proof = encoding.decode_proof(body)
    key_files = read_key_dir(keys / location, location)
    vk = encoding.decode_verifying_key(key_files.verifier_key)
    compiled = zkir.compile_circuit(zkir.load_circuit(key_files.circuit))
    public = zkir.generate_witness(compiled, request.effective_preimage())[1]
    assert public[0] == request.effective_preimage().binding_input  # the binding input is public input #0
    assert verify(vk, public, proof)
    assert not verify(vk, [public[0] + 1, *public[1:]], proof)
    (tmp_path / "proof.json").write_text(proof_json(proof))
    (tmp_path / "public.json").write_text(public_json(public))
    (tmp_path / "vk.json").write_bytes((keys / location / "verification_key.json").read_bytes())
    out = npm.snarkjs("groth16", "verify", str(tmp_path / "vk.json"), str(tmp_path / "public.json"),
                      str(tmp_path / "proof.json"))
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr


def _wallet_request(location: str) -> zkir.ProveRequest:
    wallet = read_wallet_preimages()[location]
    preimage = zkir.ProofPreimage.from_midnight(wallet.preimage)
    assert preimage.key_location == location
    return zkir.ProveRequest(preimage, None, wallet.overwrite_binding_input)


@pytest.mark.timeout(SETUP_TIMEOUT + 600)
def test_a_wallet_output_proves_through_rest_with_only_its_key_location(
        builtin_stack: tuple[Stack, Path], midnight: MidnightOracle, tmp_path: Path) -> None:
    stack, keys = builtin_stack
    request = _wallet_request(OUTPUT)
    with httpx.Client(base_url=stack.url, timeout=900) as http:
        ready = http.get("/ready").json()
        assert ready["builtin_keys"][OUTPUT] in ("pending", "setting_up")
        early = _prove(http, stack, request)
        assert early.status_code == 503, early.text
        assert int(early.headers["retry-after"]) > 0
        assert early.json()["error"] == "ServiceUnavailable"
        assert OUTPUT in early.json()["message"] and early.json()["request_id"]

        _wait_ready(http, OUTPUT)
        reply = _prove(http, stack, request)
        assert reply.status_code == 200, reply.text
    _check_proof(keys, OUTPUT, request, reply.content, tmp_path)
    # Midnight's own preprocess accepts the very preimage we proved.
    assert midnight_check(midnight, read_wallet_preimages()[OUTPUT].effective())


@pytest.mark.slow
@pytest.mark.timeout(SETUP_TIMEOUT + 600)
@pytest.mark.parametrize("location", ["midnight/zswap/spend", "midnight/dust/spend"])
def test_wallet_spends_prove_through_rest(location: str, tmp_path: Path, midnight: MidnightOracle) -> None:
    keys = tmp_path / "keys"
    with running_stack(tmp_path, TEEPROVER_BUILTIN_KEYS=location, TEEPROVER_KEYS_DIR=str(keys),
                       TEEPROVER_NUM_WORKERS="1") as stack, httpx.Client(base_url=stack.url, timeout=900) as http:
        _wait_ready(http, location)
        request = _wallet_request(location)
        reply = _prove(http, stack, request)
        assert reply.status_code == 200, reply.text
    _check_proof(keys, location, request, reply.content, tmp_path)
    assert midnight_check(midnight, read_wallet_preimages()[location].effective())
