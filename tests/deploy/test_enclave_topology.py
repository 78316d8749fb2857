"""The aws-nitro topology end to end, with Unix sockets standing in for vsock.

What runs where (deploy/k8s/overlays/aws-nitro, deploy/enclave/enclave-init.sh):

    Envoy --tcp--> parent bridge --[vsock:16:50051]--> enclave bridge --unix--> prover   (unix:/run/teeprover)
          --tcp--> parent bridge --[vsock:16:50052]--> enclave bridge --unix--> attestor
    enclave `fetch` --[vsock:3:50060]--> parent bridge file: route --> the API-key hashes

Every process is the real one (``teeprover serve``, ``python -m services.common.transport``, Envoy
with the Kubernetes policy); only the bracketed vsock hops are Unix sockets, because this machine has
no vsock loopback.  The bridges copy bytes without looking at them, so the same bytes cross either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from services.common.config import GatewayConfig
from services.gateway import k8s
from services.gateway.server import envoy_command
from services.supervisor import devsetup
from teeprover import apikeys, zkir
from teeprover.groth16 import encoding
from teeprover.groth16.verify import verify
from teeprover.keystore import read_key_dir
from tests.support.stack import REPO, SHARED_CACHE, free_port

pytestmark = pytest.mark.e2e
LOCATION = "builtin/demo/arithmetic"
FIXTURES = REPO / "tests" / "fixtures" / "zkir"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEEPROVER_")}
    env.update(extra)
    return env


def _bridge(*routes: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.common.transport", "bridge", *routes], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Topology:
    def __init__(self, url: str, api_key: str) -> None:
        self.url = url
        self.api_key = api_key


@pytest.fixture(scope="module")
def nitro() -> Iterator[Topology]:
    devsetup.prepare(SHARED_CACHE, 11)  # demo circuit keys (made once in the shared test cache)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="tp-nitro-") as tmp:
        run = Path(tmp)
        enclave, parent = run / "enclave", run / "parent"  # the enclave's /run/teeprover; the pod's secret mount
        enclave.mkdir()
        parent.mkdir()
        api_key = apikeys.new_key()
        (parent / "api_keys.sha256").write_text(apikeys.hash_key(api_key) + "\n")
        vsock = {port: run / f"vsock-{port}.sock" for port in (50051, 50052, 50060)}  # the stand-ins
        prover_port, attestor_port = free_port(), free_port()
        try:
            procs.append(_bridge(f"tcp:127.0.0.1:{prover_port}=unix:{vsock[50051]}",
                                 f"tcp:127.0.0.1:{attestor_port}=unix:{vsock[50052]}",
                                 f"unix:{vsock[50060]}=file:{parent / 'api_keys.sha256'}"))
            # enclave-init.sh: fetch the key hashes from the parent, then start the services and the bridge.
            _wait(lambda: vsock[50060].exists(), "the parent bridge")
            fetched = subprocess.run([sys.executable, "-m", "services.common.transport", "fetch",
                                      f"unix:{vsock[50060]}", str(enclave / "api_keys.sha256")], cwd=REPO,
                                     capture_output=True, text=True, timeout=60)
            assert fetched.returncode == 0, fetched.stderr
            common = {"TEEPROVER_BIND_HOST": f"unix:{enclave}", "TEEPROVER_METRICS_PORT": "0",
                      "TEEPROVER_HPKE_PUBLIC_KEY_FILE": str(enclave / "hpke.pub")}
            for service, extra in (
                ("prover", {"TEEPROVER_API_KEYS_FILE": str(enclave / "api_keys.sha256"), "TEEPROVER_NUM_WORKERS": "1",
                            "TEEPROVER_CACHE_DIR": str(SHARED_CACHE), "TEEPROVER_BUILTIN_KEYS": "none"}),
                ("attestor", {"TEEPROVER_PLATFORM": "simulated"}),
            ):
                procs.append(subprocess.Popen([sys.executable, "-m", "teeprover.cli", "serve", service], cwd=REPO,
                                              env=_env(**common, **extra), stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            procs.append(_bridge(f"unix:{vsock[50051]}=unix:{enclave / 'prover.sock'}",
                                 f"unix:{vsock[50052]}=unix:{enclave / 'attestor.sock'}"))
            cfg = GatewayConfig(port=free_port(), admin_port=free_port(), envoy_concurrency=1)
            (run / "envoy.yaml").write_text(k8s.render_balanced(cfg, {
                "prover": [("127.0.0.1", prover_port)], "attestor": [("127.0.0.1", attestor_port)],
                "params": [("127.0.0.1", free_port())]}))
            procs.append(subprocess.Popen(envoy_command(cfg, run / "envoy.yaml"), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
            url = f"http://127.0.0.1:{cfg.port}"
            _wait(lambda: httpx.get(url + "/ready", timeout=5).status_code == 200, "the prover through both bridges")
            yield Topology(url, api_key)
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def _request() -> zkir.ProveRequest:
    data = json.loads((FIXTURES / "arithmetic.preimage.json").read_text())
    data["key_location"] = LOCATION
    return zkir.ProveRequest(zkir.ProofPreimage.from_json(json.dumps(data).encode()), None, 4242)


def test_a_proof_crosses_both_bridges_with_the_key_the_parent_handed_in(nitro: Topology) -> None:
    request = _request()
    reply = httpx.post(nitro.url + "/prove", content=request.to_cbor(), timeout=60,
                       headers={"content-type": "application/cbor", "x-api-key": nitro.api_key})
    assert reply.status_code == 200, reply.text
    keys = read_key_dir(SHARED_CACHE / "keys" / LOCATION, LOCATION)
    compiled = zkir.compile_circuit(zkir.load_circuit((FIXTURES / "arithmetic.zkir.json").read_bytes()))
    public = zkir.generate_witness(compiled, request.effective_preimage())[1]
    assert public[0] == 4242
    assert verify(encoding.decode_verifying_key(keys.verifier_key), public, encoding.decode_proof(reply.content))


@pytest.mark.parametrize("key", [None, "tpk_" + "A" * 43])
def test_a_key_the_parent_did_not_hand_in_is_refused(nitro: Topology, key: str | None) -> None:
    headers = {"content-type": "application/cbor", **({"x-api-key": key} if key else {})}
    reply = httpx.post(nitro.url + "/prove", content=_request().to_cbor(), headers=headers, timeout=60)
    assert reply.status_code == 401 and reply.json()["error"] == "Unauthorized"


def test_attestation_crosses_the_attestor_bridge_and_binds_the_nonce(nitro: Topology) -> None:
    nonce = os.urandom(32).hex()
    reply = httpx.get(nitro.url + "/attestation", params={"nonce": nonce}, timeout=30)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["nonce"] == nonce and body["platform"] == "simulated" and body["attestation"]
