"""Queue latency and /health latency through Envoy while two proofs run (issue "Prover operations").

    .venv/bin/python -m bench.ops_latency [--samples 300] [--workers 3]

Starts the real stack (``teeprover serve all``) with ``--workers`` pool workers, keeps
two of them busy with back-to-back k=11 ``/prove-tx`` batches (real proofs, ~0.3 s
each), and meanwhile measures

* **/health** through Envoy: ``--samples`` sequential GETs on one keep-alive
  connection, wall time per request on the client;
* **queue latency**: the pool's queue wait (submit → a worker starts the job) of
  demo ``/prove`` jobs sent one at a time while the two batches run, read from the
  prover's job log lines (``queue_wait_ms``, the same value as the
  ``teeprover_prover_queue_wait_seconds`` histogram), plus their end-to-end time.

With the default three workers a demo job finds a free worker, so its queue wait is
pure pool overhead (dispatch, pipe, wake-up) under CPU contention; with
``--workers 2`` it waits for a batch to finish and the number measures that instead.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from tests.support.ops import CBOR, demo_request, ensure_chain_keys, log_events, long_batch
from tests.support.stack import running_stack


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": pct(values, 0.5), "p95": pct(values, 0.95), "p99": pct(values, 0.99),
            "mean": round(statistics.fmean(values), 3), "max": round(max(values), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--renice-workers", type=int, default=0, metavar="N",
                        help="experiment: renice the prover's worker processes by N once started")
    parser.add_argument("--idle", action="store_true", help="measure without the two busy batches (baseline)")
    args = parser.parse_args()
    ensure_chain_keys()
    with tempfile.TemporaryDirectory() as tmp, running_stack(
        Path(tmp), TEEPROVER_NUM_WORKERS=str(args.workers), TEEPROVER_RATE_LIMIT_RPS="1000",
        TEEPROVER_RATE_LIMIT_BURST="2000", TEEPROVER_LOG_LEVEL="INFO",
    ) as stack:
        headers = {"x-api-key": stack.api_key or "", "content-type": CBOR}
        stop = threading.Event()
        batch = long_batch(20)

        def keep_busy() -> None:
            with httpx.Client(base_url=stack.url, timeout=120) as c:
                while not stop.is_set():
                    c.post("/prove-tx", content=batch, headers=headers)

        busy = [] if args.idle else [threading.Thread(target=keep_busy, daemon=True) for _ in range(2)]
        for t in busy:
            t.start()
        with httpx.Client(base_url=stack.url, timeout=30) as c:
            deadline = time.monotonic() + 30
            if args.renice_workers:
                import os

                from tests.support.ops import descendants, prover_pid

                for pid in descendants(prover_pid(stack)):
                    os.setpriority(os.PRIO_PROCESS, pid, args.renice_workers)
            while not args.idle and c.get("/ready").json()["active_workers"] < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("the two batches did not start")
                time.sleep(0.05)
            since = len(stack.lines)
            health_ms = []
            for _ in range(args.samples):
                t0 = time.perf_counter()
                assert c.get("/health").status_code == 200
                health_ms.append((time.perf_counter() - t0) * 1e3)
            prove_ms, rids = [], []
            for i in range(max(20, args.samples // 10)):
                t0 = time.perf_counter()
                reply = c.post("/prove", content=demo_request(5000 + i).to_cbor(), headers=headers)
                prove_ms.append((time.perf_counter() - t0) * 1e3)
                assert reply.status_code == 200, reply.text
                rids.append(reply.headers["x-request-id"])
            busy_during = c.get("/ready").json()
        stop.set()
        for t in busy:
            t.join(150)
        waits = {e["request_id"]: e["queue_wait_ms"] for e in log_events(stack.lines[since:])
                 if e["state"] == "in_progress"}
        queue_ms = [waits[r] for r in rids if r in waits]
    print(json.dumps({
        "workers": args.workers, "cores": __import__("os").cpu_count(), "busy_at_end": busy_during,
        "health_through_envoy_ms": summary(health_ms),
        "queue_wait_ms": summary(queue_ms),
        "demo_prove_end_to_end_ms": summary(prove_ms),
        "targets": {"queue_wait_p95_ms": 50, "health_p95_ms": 10},
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
