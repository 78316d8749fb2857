"""Faults under load: kill -9 a worker, the prover service, Envoy; a full cache disk; slowloris.

Each fault happens while a small sustained load runs (``Load``: threads sending the load test's mix in
miniature through Envoy: ``/health``, ``/ready`` and demo ``/prove`` whose proofs are verified), and each
test states what the clients saw.  The processes are the real ones (``teeprover serve all``); the full
disk is a real tmpfs of a few KiB (needs root to mount; skipped otherwise).  Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from teeprover.errors import TeeProverError, Unavailable
from teeprover.groth16 import encoding
from teeprover.groth16.verify import verify
from teeprover.keystore import read_key_dir, write_key_dir
from tests.e2e.test_operations import (
    DEMO,
    alive,
    chain_keys,  # noqa: F401 - the module fixture that makes the k=11 chain keys
    demo_request,
    descendants,
    log_events,
    long_batch,
    post,
    prover_pid,
    ready,
    wait_for,
)
from tests.support.stack import SHARED_CACHE, Stack, running_stack

pytestmark = pytest.mark.e2e

WORKERS = 2
READY_AFTER_CRASH_S = 15  # docs/operations.md, "Faults": /ready is back within 15 s of a prover crash


# ------------------------------------------------------------------------------------ the load


@dataclass
class Seen:
    t: float  # time.monotonic() when the request was sent
    route: str
    status: int | None  # None: no HTTP reply at all
    error: str  # exception class for no reply; otherwise "" (or what was wrong with a 200)
    body: Any = None
    end: float = 0.0  # time.monotonic() when the reply (or the error) came


class Load:
    """A few threads sending /health, /ready and demo /prove (verified) back to back until stopped."""

    def __init__(self, stack: Stack, threads: int = 3) -> None:
        self.stack = stack
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        self.vk = encoding.decode_verifying_key(read_key_dir(SHARED_CACHE / "keys" / DEMO, DEMO).verifier_key)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        wait_for(lambda: len(self.seen) >= 6, 30, "the load to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(90)

    def _run(self, index: int) -> None:
        routes = ("/health", "/ready", "/prove")
        n = 0
        with httpx.Client(base_url=self.stack.url, timeout=60) as client:
            while not self.stopping.is_set():
                route = routes[(n + index) % len(routes)]
                n += 1
                self.seen.append(self._one(client, route, 900_000 + 1000 * index + n))
                time.sleep(0.05)

    def _one(self, client: httpx.Client, route: str, binding: int) -> Seen:
        t = time.monotonic()
        try:
            if route == "/prove":
                request = demo_request(binding)
                reply = post(client, self.stack, route, request.to_cbor())
            else:
                reply = client.get(route)
        except httpx.HTTPError as exc:
            return Seen(t, route, None, type(exc).__name__, end=time.monotonic())
        problem = ""
        if reply.status_code == 200 and route == "/prove":
            preimage = request.effective_preimage()
            public = [preimage.binding_input, *preimage.public_transcript_inputs]
            if not verify(self.vk, public, encoding.decode_proof(reply.content)):
                problem = "proof does not verify"
        body = reply.json() if reply.headers.get("content-type", "").startswith("application/json") else None
        return Seen(t, route, reply.status_code, problem, body, time.monotonic())

    def wait_for_answered(self, route: str, after: float) -> None:
        """Until a request to ``route`` sent after ``after`` has its reply (bounded: the machine may be busy)."""
        wait_for(lambda: any(s.route == route and s.t > after and s.status is not None for s in list(self.seen)),
                 60, f"a reply to {route} sent after the fault")

    def between(self, start: float, end: float = float("inf")) -> list[Seen]:
        return [s for s in list(self.seen) if start <= s.t < end]


def json_error(reply: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """The public error shape with the status, error name and the request id of the X-Request-ID header."""
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json", reply.headers
    body = dict(reply.json())
    assert body["error"] == error, body
    assert body["request_id"] == reply.headers["x-request-id"], body
    return body


def child_pid(stack: Stack, module: str) -> int:
    for pid in descendants(stack.proc.pid):
        with contextlib.suppress(OSError):
            if module.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    raise AssertionError(f"no {module} process under the supervisor")


def envoy_pid(stack: Stack) -> int:
    gateway = child_pid(stack, "services.gateway.server")
    for pid in descendants(gateway):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"envoy"):
                return pid
    raise AssertionError("no envoy process under the gateway")


# ------------------------------------------------------------------------------------ the stack


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory, chain_keys: Path) -> Iterator[Stack]:  # noqa: F811
    with running_stack(tmp_path_factory.mktemp("faults"), TEEPROVER_NUM_WORKERS=str(WORKERS),
                       TEEPROVER_JOB_TIMEOUT="60", TEEPROVER_RATE_LIMIT_RPS="1000",
                       TEEPROVER_RATE_LIMIT_BURST="2000") as stack:
        yield stack


# ------------------------------------------------------------------------------------ kill -9 a worker


def test_sigkill_of_a_worker_under_load_fails_that_request_alone(fault_stack: Stack) -> None:
    stack = fault_stack
    since = len(stack.lines)
    with Load(stack) as load, httpx.Client(base_url=stack.url, timeout=60) as client, ThreadPoolExecutor(1) as ex:
        victim = ex.submit(post, client, stack, "/prove-tx", long_batch(40))
        # The demo proofs of the load finish in milliseconds; the job still running after 1 s is the batch.
        jobs = JobWatch(stack, since)
        pid = wait_for(lambda: jobs.running_longer_than(1.0), 20, "the batch to hold a worker")
        assert pid in descendants(prover_pid(stack))
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        reply = victim.result(timeout=30)
        body = json_error(reply, 500, "InternalError")
        assert "worker process died" in body["message"]
        # The pool is whole again within 5 s (the load keeps running meanwhile).
        wait_for(lambda: ready(stack)["total_workers"] == WORKERS, 5, "the pool to replace the dead worker")
        assert not alive(pid)
        load.wait_for_answered("/prove", after=time.monotonic())  # the load goes on on the repaired pool
        during = load.between(killed_at - 5)
    failed = [e for e in log_events(stack.lines[since:]) if e["state"] in ("failed", "timed_out")]
    assert [(e["request_id"], e["worker_pid"]) for e in failed] == [(body["request_id"], pid)]
    # Every other request of the load was answered and right, before, during and after the kill.
    assert during and [s for s in during if s.status != 200 or s.error] == []
    assert any(s.route == "/prove" and s.t > killed_at for s in during)


class JobWatch:
    """Jobs of the prover's log (after line ``since``) still in progress, and since when this watch saw them."""

    def __init__(self, stack: Stack, since: int) -> None:
        self.stack, self.since = stack, since
        self.first_seen: dict[str, float] = {}

    def running_longer_than(self, seconds: float) -> int | None:
        """The worker pid of a job in progress for at least ``seconds`` (the demo proofs take milliseconds)."""
        running: dict[str, int] = {}
        for event in log_events(self.stack.lines[self.since:]):
            if event["state"] == "in_progress":
                running[event["job_id"]] = event["worker_pid"]
            else:
                running.pop(event["job_id"], None)
        now = time.monotonic()
        for job, pid in running.items():
            if now - self.first_seen.setdefault(job, now) >= seconds:
                return pid
        return None


# ------------------------------------------------------------------------------------ kill -9 the prover service


@pytest.mark.slow
def test_sigkill_of_the_prover_service_is_503_json_in_flight_and_ready_again(fault_stack: Stack) -> None:
    stack = fault_stack
    old = prover_pid(stack)
    old_workers = descendants(old)
    with Load(stack) as load, httpx.Client(base_url=stack.url, timeout=60) as client, ThreadPoolExecutor(2) as ex:
        since = len(stack.lines)
        in_flight = [ex.submit(post, client, stack, "/prove-tx", long_batch(40)) for _ in range(2)]
        jobs = JobWatch(stack, since)
        wait_for(lambda: jobs.running_longer_than(0.5), 20, "a batch to be running")
        killed_at = time.monotonic()
        os.kill(old, signal.SIGKILL)
        replies = [f.result(timeout=30) for f in in_flight]  # not a hang
        answered_at = time.monotonic()
        # `serve all` starts a new prover and /ready answers "ready" again.
        wait_for(lambda: _ready_status(stack) == "ready", READY_AFTER_CRASH_S, "/ready after the prover's restart",
                 every=0.1)
        back_at = time.monotonic()
        new = prover_pid(stack)
        load.wait_for_answered("/prove", after=back_at)  # the load goes on on the new prover
    for reply in replies:
        body = json_error(reply, 503, "ServiceUnavailable")
        assert body["message"], body
    assert new != old
    assert wait_for(lambda: not any(alive(p) for p in old_workers), 30, "the old prover's workers to exit")
    seen = load.between(killed_at)
    # Clients of the load saw answers only: 200, or 503 as JSON while the prover was away; nothing lost.
    assert [s for s in seen if s.status is None] == []
    assert {s.status for s in seen} <= {200, 503}, {s.status for s in seen}
    assert all(s.body and s.body["error"] == "ServiceUnavailable" for s in seen if s.status == 503)
    assert [s for s in seen if s.error] == []
    after = [s for s in seen if s.t > back_at]
    assert after and all(s.status == 200 for s in after), after
    print(f"prover killed: in-flight answered 503 after {answered_at - killed_at:.2f} s, "
          f"/ready back after {back_at - killed_at:.1f} s; load saw {len(seen)} requests, "
          f"{sum(s.status == 503 for s in seen)} of them 503")


def _ready_status(stack: Stack) -> str | None:
    try:
        return str(httpx.get(stack.url + "/ready", timeout=5).json().get("status"))
    except (httpx.HTTPError, ValueError):
        return None


# ------------------------------------------------------------------------------------ kill -9 Envoy


def test_sigkill_of_envoy_is_restarted_and_clients_see_connection_errors_only_in_the_gap(fault_stack: Stack) -> None:
    stack = fault_stack
    old = envoy_pid(stack)
    with Load(stack) as load:
        killed_at = time.monotonic()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: _health(stack), 60, "Envoy to answer again", every=0.05)
        back_at = time.monotonic()
        load.wait_for_answered("/health", after=back_at)
    new = envoy_pid(stack)
    assert new != old and not alive(old)
    seen = load.between(killed_at - 1)
    failed = [s for s in seen if s.status != 200 or s.error]
    # Only connection errors (refused, reset, closed), and only between the kill and Envoy's return.
    assert all(s.status is None for s in failed), [(s.route, s.status, s.error) for s in failed]
    assert all(s.end >= killed_at and s.t <= back_at for s in failed), [(s.t - killed_at, s.error) for s in failed]
    assert [s for s in seen if s.t > back_at] and all(s.status == 200 for s in seen if s.t > back_at)
    print(f"Envoy killed: back after {back_at - killed_at:.1f} s; {len(failed)} of {len(seen)} requests "
          f"saw {sorted({s.error for s in failed})}")


def _health(stack: Stack) -> bool:
    try:
        return httpx.get(stack.url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# ------------------------------------------------------------------------------------ slowloris


SLOW_CLIENTS = 50


def test_fifty_slowloris_connections_do_not_slow_health(fault_stack: Stack) -> None:
    stack = fault_stack
    opened: list[socket.socket] = []
    stop = threading.Event()

    def trickle() -> None:
        # Each connection sends a request line and then one header byte at a time, never finishing.
        while not stop.wait(0.5):
            for s in list(opened):
                with contextlib.suppress(OSError):
                    s.send(b"x")

    try:
        for i in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", stack.ports["port"]), timeout=5)
            s.sendall(f"GET /health HTTP/1.1\r\nHost: slow{i}\r\nX-Slow: ".encode())
            opened.append(s)
        feeder = threading.Thread(target=trickle, daemon=True)
        feeder.start()
        times = []
        with httpx.Client(base_url=stack.url, timeout=5) as client:
            for _ in range(30):
                t = time.perf_counter()
                reply = client.get("/health")
                times.append(time.perf_counter() - t)
                assert reply.status_code == 200 and reply.json()["status"] == "healthy"
                time.sleep(0.05)
        # All 50 are still open (Envoy serves others meanwhile instead of refusing them).
        assert sum(_still_open(s) for s in opened) == SLOW_CLIENTS
    finally:
        stop.set()
        for s in opened:
            s.close()
    # The specification's bound: /health within 100 ms while 50 slow clients hold connections (a healthy
    # stack answers in a few ms, so this is far from the noise of a busy machine).
    assert statistics.median(times) < 0.1, times
    print(f"/health with {SLOW_CLIENTS} slowloris connections: median {statistics.median(times) * 1e3:.1f} ms, "
          f"max {max(times) * 1e3:.1f} ms")


def _still_open(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) != b""  # b"" = closed by Envoy
    except BlockingIOError:
        return True  # nothing to read: open
    except OSError:
        return False


# ------------------------------------------------------------------------------------ a full cache disk


@pytest.fixture()
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs: writes past it fail with ENOSPC like a full cache volume."""
    mount = tmp_path / "cache"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_parameter_fetch_onto_a_full_disk_fails_cleanly_without_a_partial_file(small_tmpfs: Path) -> None:
    from teeprover.params.store import ParamStore
    from tests.support.params_mirror import Mirror, leftovers, manifest_for, random_file

    data = random_file(1, size=300 * 1024)  # larger than the whole filesystem
    with Mirror() as mirror:
        mirror.files["p12.ptau"] = data
        with ParamStore(small_tmpfs / "params", manifest_for({12: data}, [mirror.base("m")])) as store:
            with pytest.raises(Unavailable) as failed:
                store.ensure(12)
    assert "No space left on device" in failed.value.message
    assert leftovers(small_tmpfs / "params") == []


def test_key_setup_onto_a_full_disk_fails_cleanly_without_a_partial_file(small_tmpfs: Path) -> None:
    circuit = (Path(__file__).parents[1] / "fixtures" / "zkir" / "arithmetic.zkir.json").read_bytes()
    target = small_tmpfs / "keys" / "x"
    with pytest.raises(TeeProverError) as failed:
        write_key_dir(target, circuit=circuit, prover_key=os.urandom(200 * 1024), verifier_key=b"vk",
                      verification_key_json="{}", meta={"k": 10})
    assert "No space left on device" in failed.value.message
    assert not target.exists() or list(target.iterdir()) == []
    # With room, the same call succeeds and the keys read back.
    write_key_dir(target, circuit=circuit, prover_key=b"pk" * 100, verifier_key=b"vk", verification_key_json="{}",
                  meta={"k": 10})
    assert read_key_dir(target, "x").prover_key == b"pk" * 100


# ------------------------------------------------------------------------------------ a backlog of jobs


@pytest.mark.slow
def test_a_full_backlog_of_jobs_leaves_health_and_ready_answering(tmp_path: Path, chain_keys: Path) -> None:  # noqa: F811
    """Regression (found by make loadtest): every job request holds a prover gRPC thread; with more jobs
    waiting than threads, /health, /ready and /version queued behind them until Envoy answered 504 at 30 s."""
    backlog = 22  # 1 running + 16 queued + 5 refused (queue full): more than the old 16 threads
    with running_stack(tmp_path, TEEPROVER_NUM_WORKERS="1", TEEPROVER_JOB_CAPACITY="16",
                       TEEPROVER_RATE_LIMIT_RPS="1000", TEEPROVER_RATE_LIMIT_BURST="2000") as stack, \
            httpx.Client(base_url=stack.url, timeout=120) as client, ThreadPoolExecutor(backlog) as ex:
        jobs = [ex.submit(post, client, stack, "/prove-tx", long_batch(6)) for _ in range(backlog)]
        wait_for(lambda: ready(stack)["queue_size"] == 16, 60, "a full queue")
        with httpx.Client(base_url=stack.url, timeout=10) as probe:
            for route in ("/health", "/ready", "/version") * 3:
                assert probe.get(route).status_code == 200  # not 504 after Envoy's 30 s
            assert probe.get("/ready").json()["queue_size"] >= 1
        replies = [j.result(timeout=300) for j in jobs]
    statuses = sorted(r.status_code for r in replies)
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 17, statuses
    for reply in replies:
        if reply.status_code == 503:
            json_error(reply, 503, "ServiceUnavailable")
            assert reply.headers["retry-after"].isdigit()
