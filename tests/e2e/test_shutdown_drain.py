"""SIGTERM to ``teeprover serve all`` drains: proofs in flight through Envoy finish, new requests get 503 JSON.

The four proofs are real work (the k=11 chain circuit of test_operations, ~0.3 s each) on one
worker, so three of them are still queued when the signal arrives.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from teeprover.groth16 import encoding
from teeprover.groth16.verify import verify
from teeprover.keystore import read_key_dir
from tests.e2e.test_operations import CBOR, CHAIN, chain_keys, chain_request, ready, wait_for
from tests.support.stack import running_stack

pytestmark = pytest.mark.e2e

__all__ = ["chain_keys"]  # the fixture, shared with test_operations

GRACE = 20


def test_sigterm_finishes_four_rest_proofs_refuses_new_ones_with_503_and_exits_in_grace(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with running_stack(tmp_path, TEEPROVER_NUM_WORKERS="1", TEEPROVER_SHUTDOWN_GRACE=str(GRACE),
                       TEEPROVER_RATE_LIMIT_BURST="100") as stack:
        # After the stack's first start made the k <= 11 development parameters in the shared cache.
        keys: Path = request.getfixturevalue("chain_keys")
        vk = encoding.decode_verifying_key(read_key_dir(keys, CHAIN).verifier_key)
        headers = {"x-api-key": stack.api_key or "", "content-type": CBOR}
        requests = [chain_request(100 + i) for i in range(4)]
        with httpx.Client(base_url=stack.url, timeout=60) as client, ThreadPoolExecutor(4) as pool:
            running = [pool.submit(client.post, "/prove", content=r.to_cbor(), headers=headers) for r in requests]
            wait_for(lambda: (lambda s: s["active_workers"] + s["queue_size"] == 4)(ready(stack)), 20,
                     "four proofs in the prover")
            stack.proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # Once the gateway drains, a new request is refused while the four are still being proved.
            wait_for(lambda: httpx.get(stack.url + "/health", timeout=5).status_code == 503, 10, "the gateway to drain")
            refused = client.post("/prove", content=requests[0].to_cbor(), headers=headers)
            finished_before_refusal = sum(f.done() for f in running)
            replies = [f.result(60) for f in running]
        code = stack.proc.wait(max(0.0, signalled + GRACE - time.monotonic()))  # raises when over the grace

    assert finished_before_refusal < 4, "the proofs were done before the refusal: nothing was tested"
    for sent, reply in zip(requests, replies, strict=True):
        assert reply.status_code == 200, reply.text
        preimage = sent.effective_preimage()
        proof = encoding.decode_proof(reply.content)
        assert verify(vk, [preimage.binding_input, *preimage.public_transcript_inputs], proof)
    assert refused.headers["content-type"] == "application/json"
    body = refused.json()
    assert list(body) == ["error", "message", "details", "request_id"]
    assert body["error"] == "ServiceUnavailable" and "shutting down" in body["message"]
    assert body["request_id"] == refused.headers["x-request-id"]
    assert int(refused.headers["retry-after"]) >= 1
    assert code == 0, stack.log_text()[-3000:]
    assert "TEE Prover stopped" in stack.log_text()


def test_envoy_dies_with_a_sigkilled_gateway_process(tmp_path: Path) -> None:
    """The gateway keeps Envoy as a child in its own session: a SIGKILL of the gateway must not orphan it
    (the supervisor's restart would then find the ports taken)."""
    from tests.e2e.test_gateway_alone import gateway_only

    with gateway_only(tmp_path) as (proc, url):
        assert httpx.get(url + "/health", timeout=10).status_code == 503  # up, upstreams down
        proc.kill()
        proc.wait(10)
        wait_for(lambda: _refused(url), 10, "Envoy to be gone")


def _refused(url: str) -> bool:
    try:
        httpx.get(url + "/health", timeout=2)
    except httpx.ConnectError:
        return True
    return False
