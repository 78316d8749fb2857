"""Operations against real processes: the pool under load, limits, timeouts, crashes, cancels, metrics, drain.

Every test runs the real stack (``teeprover serve all``: Envoy + three Python services)
or, for SIGTERM, the real prover process alone.  Long jobs are real work, not test
hooks: a ``/prove-tx`` batch of proofs of a k=11 circuit (a chain of ~1900
multiplications, ~0.3 s a proof on 2 cores) whose keys the module sets up once in
the shared test cache.  The demo circuit itself proves in ~10 ms, too fast to
hold a worker.  Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cbor2
import grpc
import httpx
import pytest
from google.api import httpbody_pb2

from teeprover.groth16 import encoding
from teeprover.groth16.verify import verify
from teeprover.keystore import read_key_dir
from teeprover.v1 import prover_pb2, prover_pb2_grpc
from tests.support.ops import (
    CBOR,
    CHAIN,
    DEMO,
    chain_request,
    demo_request,
    descendants,
    ensure_chain_keys,
    log_events,
    long_batch,
    prover_pid,
)
from tests.support.stack import REPO, SHARED_CACHE, Stack, free_port, running_stack

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def chain_keys() -> Path:
    """Keys of the k=11 chain circuit in the shared key store (made once, ~3 s)."""
    return ensure_chain_keys()


# ------------------------------------------------------------------------------------ helpers


def post(client: httpx.Client, stack: Stack, path: str, body: bytes, **kw: Any) -> httpx.Response:
    return client.post(path, content=body, headers={"x-api-key": stack.api_key or "", "content-type": CBOR}, **kw)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def ready(stack: Stack) -> dict[str, Any]:
    reply = httpx.get(stack.url + "/ready", timeout=5)
    return dict(reply.json())


def scrape(port: int) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value} (labels as printed)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def free_port_block(n: int) -> int:
    """A base port with base..base+n-1 all free (metrics: supervisor +1 prover, +2 attestor, +3 params)."""
    for _ in range(50):
        base = free_port()
        if base + n > 65535:
            continue
        try:
            socks = []
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports")


def running_job_pid(stack: Stack, since: int, request_id: str | None = None) -> int:
    """The worker pid of the latest job that went in_progress after log line ``since``."""
    def find() -> int | None:
        events = [e for e in log_events(stack.lines[since:]) if e["state"] == "in_progress"]
        if request_id is not None:
            events = [e for e in events if e["request_id"] == request_id]
        return events[-1]["worker_pid"] if events else None
    return int(wait_for(find, 15, "a job in progress"))


# ------------------------------------------------------------------------------------ stacks


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory: pytest.TempPathFactory, chain_keys: Path) -> Iterator[Stack]:
    base = free_port_block(4)
    with running_stack(tmp_path_factory.mktemp("ops"), TEEPROVER_NUM_WORKERS="2", TEEPROVER_JOB_TIMEOUT="60",
                       TEEPROVER_METRICS_PORT=str(base), TEEPROVER_RATE_LIMIT_RPS="200",
                       TEEPROVER_RATE_LIMIT_BURST="400") as stack:
        yield stack


@pytest.fixture()
def client(ops_stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ops_stack.url, timeout=60) as c:
        yield c


# ------------------------------------------------------------------------------------ load


def test_sixteen_concurrent_proofs_all_succeed_and_ready_shows_the_pool(ops_stack: Stack, chain_keys: Path) -> None:
    demo_vk = encoding.decode_verifying_key(read_key_dir(SHARED_CACHE / "keys" / DEMO, DEMO).verifier_key)
    chain_vk = encoding.decode_verifying_key(read_key_dir(chain_keys, CHAIN).verifier_key)
    # Half demo proofs (the spec's circuit), half k=11 ones so that the pool is visibly busy.
    requests = [demo_request(1000 + i) if i % 2 == 0 else chain_request(2000 + i) for i in range(16)]
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(ready(ops_stack))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with httpx.Client(base_url=ops_stack.url, timeout=60) as c, ThreadPoolExecutor(16) as ex:
            replies = list(ex.map(lambda r: post(c, ops_stack, "/prove", r.to_cbor()), requests))
    finally:
        stop.set()
        watcher.join(10)
    assert [r.status_code for r in replies] == [200] * 16, [r.text for r in replies if r.status_code != 200]
    for request, reply in zip(requests, replies, strict=True):
        vk = demo_vk if request.preimage.key_location == DEMO else chain_vk
        preimage = request.effective_preimage()
        public = [preimage.binding_input, *preimage.public_transcript_inputs]
        proof = encoding.decode_proof(reply.content)
        assert verify(vk, public, proof)
        assert not verify(vk, [public[0] + 1, *public[1:]], proof)
    assert all(s["status"] == "ready" and s["total_workers"] == 2 for s in seen)
    assert max(s["active_workers"] for s in seen) == 2, seen
    assert max(s["queue_size"] for s in seen) >= 1, seen


# ------------------------------------------------------------------------------------ crashes and cancels


def test_sigkill_of_a_worker_fails_only_its_request(ops_stack: Stack, client: httpx.Client) -> None:
    prover = prover_pid(ops_stack)
    since = len(ops_stack.lines)
    with ThreadPoolExecutor(1) as ex:
        pending = ex.submit(post, client, ops_stack, "/prove-tx", long_batch(40))
        pid = running_job_pid(ops_stack, since)
        assert pid in descendants(prover)  # a worker process of this prover
        os.kill(pid, signal.SIGKILL)
        reply = pending.result(timeout=30)
    assert reply.status_code == 500, reply.text
    body = reply.json()
    assert body["error"] == "InternalError" and "worker process died" in body["message"]
    assert body["request_id"] == reply.headers["x-request-id"]
    failed = wait_for(lambda: [e for e in log_events(ops_stack.lines[since:]) if e["state"] == "failed"], 5,
                      "the failed job's log line")
    assert [(e["request_id"], e["worker_pid"], e["error"]) for e in failed] == [(body["request_id"], pid,
                                                                                  "InternalError")]
    assert post(client, ops_stack, "/prove", demo_request().to_cbor()).status_code == 200
    wait_for(lambda: ready(ops_stack)["total_workers"] == 2, 15, "the pool to replace the dead worker")
    assert not alive(pid)


def test_client_disconnect_through_envoy_cancels_the_job(ops_stack: Stack, client: httpx.Client) -> None:
    metrics_port = ops_stack.ports["metrics_port"] + 1
    before = scrape(metrics_port)['teeprover_prover_jobs_total{state="cancelled"}']
    since = len(ops_stack.lines)
    body = long_batch(40)
    sock = socket.create_connection(("127.0.0.1", ops_stack.ports["port"]), timeout=10)
    head = (f"POST /prove-tx HTTP/1.1\r\nHost: x\r\nX-API-Key: {ops_stack.api_key}\r\nContent-Type: {CBOR}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body)
    pid = running_job_pid(ops_stack, since)
    sock.close()  # the wallet goes away mid-proof
    event = wait_for(lambda: [e for e in log_events(ops_stack.lines[since:]) if e["state"] == "cancelled"], 10,
                     "the job to be cancelled")[0]
    assert event["worker_pid"] == pid and event["run_time_ms"] < 5000
    assert scrape(metrics_port)['teeprover_prover_jobs_total{state="cancelled"}'] == before + 1
    assert alive(pid)  # a cooperative cancel keeps the worker
    t = time.monotonic()
    assert post(client, ops_stack, "/prove", demo_request().to_cbor()).status_code == 200
    assert time.monotonic() - t < 5
    assert ready(ops_stack)["total_workers"] == 2


def test_grpc_cancel_against_the_prover_port_cancels_the_job(ops_stack: Stack, client: httpx.Client) -> None:
    since = len(ops_stack.lines)
    rid = "ops-grpc-cancel-" + secrets.token_hex(4)
    with grpc.insecure_channel(f"127.0.0.1:{ops_stack.ports['prover_port']}") as channel:
        stub = prover_pb2_grpc.ProverStub(channel)
        call = stub.ProveTx.future(httpbody_pb2.HttpBody(content_type=CBOR, data=long_batch(40)), timeout=60,
                                   metadata=(("x-api-key", ops_stack.api_key or ""), ("x-request-id", rid)))
        pid = running_job_pid(ops_stack, since, rid)
        assert call.cancel()
        event = wait_for(lambda: [e for e in log_events(ops_stack.lines[since:])
                                  if e["request_id"] == rid and e["state"] == "cancelled"], 10, "a cancelled job")[0]
        assert event["worker_pid"] == pid
        # The worker is free at once: the next job runs on an idle pool.
        ready_now = stub.Ready(prover_pb2.ReadyRequest(), timeout=5)
        assert ready_now.active_workers == 0 and ready_now.total_workers == 2
    assert post(client, ops_stack, "/prove", demo_request().to_cbor()).status_code == 200


# ------------------------------------------------------------------------------------ metrics


def test_metrics_move_on_every_service_and_envoy_exposes_its_own(ops_stack: Stack, client: httpx.Client) -> None:
    base = ops_stack.ports["metrics_port"]
    prover, attestor, params = base + 1, base + 2, base + 3
    b_prover, b_attestor, b_params = scrape(prover), scrape(attestor), scrape(params)
    assert post(client, ops_stack, "/prove", demo_request().to_cbor()).status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/attestation", params={"nonce": "ab" * 8}).status_code == 200
    assert client.get("/fetch-params/10").status_code in (200, 429)
    a_prover, a_attestor, a_params = scrape(prover), scrape(attestor), scrape(params)

    def moved(before: dict[str, float], after: dict[str, float], name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    ok = '{code="OK",method="%s",service="%s"}'
    assert moved(b_prover, a_prover, "teeprover_requests_total" + ok % ("Prove", "prover")) == 1
    assert moved(b_prover, a_prover, "teeprover_requests_total" + ok % ("Health", "prover")) == 1
    assert moved(b_prover, a_prover, 'teeprover_request_duration_seconds_count{method="Prove",service="prover"}') == 1
    assert moved(b_prover, a_prover, 'teeprover_prover_proof_seconds_count{k="10"}') == 1
    assert moved(b_prover, a_prover, "teeprover_prover_queue_wait_seconds_count") == 1
    assert moved(b_prover, a_prover, 'teeprover_prover_jobs_total{state="completed"}') == 1
    assert moved(b_prover, a_prover, 'teeprover_prover_job_run_seconds_count{state="completed"}') == 1
    for gauge in ("queue_size", "active_workers", "capacity"):
        assert a_prover[f"teeprover_prover_{gauge}"] == 0
    assert a_prover["teeprover_prover_total_workers"] == 2
    # Histogram buckets resolve the fast end (health checks) as well as the slow one (proofs).
    assert 'teeprover_request_duration_seconds_bucket{le="0.001",method="Health",service="prover"}' in a_prover
    assert 'teeprover_request_duration_seconds_bucket{le="600.0",method="Prove",service="prover"}' in a_prover
    assert moved(b_attestor, a_attestor, "teeprover_requests_total" + ok % ("GetAttestation", "attestor")) == 1
    assert moved(b_attestor, a_attestor,
                 'teeprover_request_duration_seconds_count{method="GetAttestation",service="attestor"}') == 1
    fetched = sum(moved(b_params, a_params, n) for n in a_params
                  if n.startswith("teeprover_requests_total{") and 'service="params"' in n and "Fetch" in n)
    assert fetched >= 1 or any(n.startswith("teeprover_params_cache_hits_total") for n in a_params)
    envoy = httpx.get(ops_stack.admin + "/stats/prometheus", timeout=5).text
    assert re.search(r"^envoy_http_downstream_rq_total\{.*\} [1-9]", envoy, re.M)
    assert "envoy_cluster_upstream_rq_time_bucket" in envoy


# ------------------------------------------------------------------------------------ limits


@pytest.fixture(scope="module")
def tight_stack(tmp_path_factory: pytest.TempPathFactory, chain_keys: Path) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("tight"), TEEPROVER_NUM_WORKERS="1", TEEPROVER_JOB_CAPACITY="2",
                       TEEPROVER_JOB_TIMEOUT="2", TEEPROVER_RATE_LIMIT_RPS="200",
                       TEEPROVER_RATE_LIMIT_BURST="400") as stack:
        yield stack


def test_full_queue_is_503_json_with_retry_after(tight_stack: Stack) -> None:
    with httpx.Client(base_url=tight_stack.url, timeout=30) as c, ThreadPoolExecutor(3) as ex:
        slow = ex.submit(post, c, tight_stack, "/prove-tx", long_batch(40))  # ends in 504 after 2 s
        wait_for(lambda: ready(tight_stack)["active_workers"] == 1, 10, "the slow job to start")
        queued = [ex.submit(post, c, tight_stack, "/prove", demo_request(i).to_cbor()) for i in range(2)]
        wait_for(lambda: ready(tight_stack)["queue_size"] == 2, 10, "two queued jobs")
        extra = [post(c, tight_stack, "/prove", demo_request().to_cbor()) for _ in range(2)]
        assert slow.result(30).status_code == 504
        assert [q.result(30).status_code for q in queued] == [200, 200]
    for reply in extra:
        assert reply.status_code == 503, reply.text
        assert reply.headers["content-type"] == "application/json"
        body = reply.json()
        assert body["error"] == "ServiceUnavailable" and body["message"] == "proof queue is full"
        assert body["details"] == {"queue_size": 2, "capacity": 2}
        assert body["request_id"] == reply.headers["x-request-id"]
        assert 1 <= int(reply.headers["retry-after"]) <= 60


def test_job_timeout_is_504_and_kills_the_worker(tight_stack: Stack) -> None:
    since = len(tight_stack.lines)
    with httpx.Client(base_url=tight_stack.url, timeout=30) as c:
        start = time.monotonic()
        reply = post(c, tight_stack, "/prove-tx", long_batch(40))
        elapsed = time.monotonic() - start
        assert reply.status_code == 504, reply.text
        assert 2 <= elapsed < 4.5, elapsed
        body = reply.json()
        assert body["error"] == "Timeout"
        assert body["message"] == "Proof generation exceeded timeout (2s)"
        assert body["request_id"] == reply.headers["x-request-id"]
        pid = running_job_pid(tight_stack, since, body["request_id"])
        wait_for(lambda: not alive(pid), 5, "the timed-out worker to be gone")
        [event] = wait_for(lambda: [e for e in log_events(tight_stack.lines[since:]) if e["state"] == "timed_out"],
                           5, "the timed-out job's log line")
        assert event["worker_pid"] == pid and event["request_id"] == body["request_id"]
        assert post(c, tight_stack, "/prove", demo_request().to_cbor()).status_code == 200
        assert ready(tight_stack)["total_workers"] == 1
        assert pid not in descendants(prover_pid(tight_stack))


# ------------------------------------------------------------------------------------ drain


def test_sigterm_lets_the_running_proof_finish_refuses_new_work_and_exits_0(tmp_path: Path,
                                                                              chain_keys: Path) -> None:
    key = secrets.token_hex(32)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEEPROVER_")}
    env.update({"TEEPROVER_PROVER_PORT": str(port), "TEEPROVER_METRICS_PORT": "0", "TEEPROVER_API_KEYS": key,
                "TEEPROVER_CACHE_DIR": str(SHARED_CACHE), "TEEPROVER_NUM_WORKERS": "1",
                "TEEPROVER_SHUTDOWN_GRACE": "30", "TEEPROVER_BUILTIN_KEYS": "none"})
    log_file = (tmp_path / "prover.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "services.prover.server"], cwd=REPO, env=env,
                            stdout=log_file, stderr=subprocess.STDOUT)
    try:
        md = (("x-api-key", key),)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
            stub = prover_pb2_grpc.ProverStub(channel)
            wait_for(lambda: _ready_or_none(stub), 60, "the prover to be ready", every=0.1)
            running = stub.ProveTx.future(httpbody_pb2.HttpBody(content_type=CBOR, data=long_batch(10)),
                                          timeout=60, metadata=md)
            wait_for(lambda: stub.Ready(prover_pb2.ReadyRequest(), timeout=5).active_workers == 1, 15,
                     "the proof to start")
            proc.send_signal(signal.SIGTERM)
            wait_for(lambda: not _ready_or_none(stub), 5, "/ready to turn not_ready")
            # New work is refused while the running proof goes on.
            with pytest.raises(grpc.RpcError) as refused:
                stub.Prove(httpbody_pb2.HttpBody(content_type=CBOR, data=demo_request().to_cbor()), timeout=5,
                           metadata=md)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in (refused.value.details() or "")
            assert not running.done()
            reply = running.result(timeout=30)
            assert len(cbor2.loads(reply.data)) == 10
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log_file.seek(0)
        text = log_file.read()
        log_file.close()
    assert '"msg":"drained"' in text, text[-3000:]


def _ready_or_none(stub: prover_pb2_grpc.ProverStub) -> bool:
    try:
        return stub.Ready(prover_pb2.ReadyRequest(), timeout=5).status == "ready"
    except grpc.RpcError:
        return False

