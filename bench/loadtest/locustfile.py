"""Locust user for ``make loadtest`` (run by ``bench/loadtest/run.py``: ``locust --headless -f this file``).

Every reply is judged here, by the client, into one outcome:

* ``ok``: 200 with the right content. ``/health``, ``/ready``, ``/version`` and
  ``/attestation`` (the nonce echoed) by their JSON; ``/k`` must be the circuit's k;
  ``/check`` must equal the library's own check of the same preimage; every ``/prove``
  proof is verified with the circuit's verifying key (``teeprover.groth16.verify``), and
  must not verify for another binding input;
* ``refused``: graceful overload: 429 or 503 as the public JSON error (``request_id`` equal to
  the ``X-Request-ID`` header) with ``Retry-After``, or 504 ``Timeout`` as JSON;
* ``lost``: no reply (a refused or dropped connection, a reset, or nothing within the client timeout);
* ``wrong``: anything else: a wrong body, a proof that does not verify, another status, 429/503
  without ``Retry-After``.

Proofs are verified after the run (``test_stop``) so that the verifier's CPU time does not sit
inside other requests' latency.  Records go to ``LOADTEST_RECORDS`` as JSON lines.

Environment: ``LOADTEST_SCENARIO``, ``LOADTEST_QUICK`` (1 = short stages), ``LOADTEST_CACHE``
(the stack's cache dir, where the chain keys are), ``LOADTEST_API_KEY``, ``LOADTEST_RECORDS``.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import gevent
from locust import HttpUser, LoadTestShape, events, task

from bench.loadtest import circuits, scenarios

SCENARIO = scenarios.get(os.environ["LOADTEST_SCENARIO"], quick=os.environ.get("LOADTEST_QUICK") == "1")
CHAINS = circuits.load(Path(os.environ["LOADTEST_CACHE"]))
API_KEY = os.environ["LOADTEST_API_KEY"]
RECORDS: list[dict[str, Any]] = []
PROOFS: list[tuple[dict[str, Any], int, int, bytes]] = []  # (record, k, binding, proof bytes)
T0 = time.time()


def _error_shape_ok(response: Any) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return (isinstance(body, dict) and {"error", "message", "request_id"} <= body.keys()
            and body["request_id"] == response.headers.get("x-request-id"))


def judge_refusal(response: Any) -> tuple[str, str]:
    status = response.status_code
    if status in (429, 503):
        if not _error_shape_ok(response):
            return "wrong", f"{status} without the JSON error shape: {response.text[:200]!r}"
        if not response.headers.get("retry-after", "").isdigit():
            return "wrong", f"{status} without Retry-After"
        return "refused", ""
    if status == 504 and _error_shape_ok(response) and response.json()["error"] == "Timeout":
        return "refused", ""
    return "wrong", f"status {status}: {response.text[:200]!r}"


class Wallet(HttpUser):
    def on_start(self) -> None:
        self.next_at = time.monotonic() + random.uniform(0, scenarios.USER_PERIOD_S)
        gevent.sleep(self.next_at - time.monotonic())  # spread the users' first requests evenly

    def wait_time(self) -> float:
        """One request per period at this user's own phase.  (Locust's ``constant_throughput`` paces every
        user from its spawn time, so users spawned together send together: bursts every period.)  A user
        whose reply came too late to keep its phase waits a random part of a period, so that users held
        up together by a slow server do not come back as one burst."""
        now = time.monotonic()
        self.next_at += scenarios.USER_PERIOD_S
        if self.next_at < now:
            self.next_at = now + random.uniform(0, scenarios.USER_PERIOD_S)
        return self.next_at - now

    def _call(self, route: str, method: str, path: str, judge: Callable[[Any, dict[str, Any]], str | None],
              k: int | None = None, **kw: Any) -> None:
        """One request; ``judge`` looks at a 200 reply and names what is wrong with it (None: nothing)."""
        start = time.time()
        with self.client.request(method, path, name=route if k is None else f"{route} k={k}", catch_response=True,
                                 timeout=scenarios.CLIENT_TIMEOUT_S, **kw) as response:
            record: dict[str, Any] = {"t": start - T0, "route": route, "k": k, "status": response.status_code,
                                      "latency_s": time.time() - start,
                                      "request_id": response.headers.get("x-request-id")}
            RECORDS.append(record)
            if response.status_code == 0:
                record.update(outcome="lost", note=str(response.error)[:200])
                response.failure(f"lost: {response.error}")
                return
            if response.status_code == 200:
                try:
                    problem = judge(response, record)
                except ValueError as exc:  # JSON or CBOR that does not parse
                    problem = f"undecodable reply: {exc}"
                outcome, note = ("ok", "") if problem is None else ("wrong", problem)
            else:
                outcome, note = judge_refusal(response)
            record.update(outcome=outcome, note=note)
            if outcome == "wrong":
                response.failure(note)
            else:
                response.success()  # a graceful refusal under overload is the server doing its job

    def _headers(self, content_type: str) -> dict[str, str]:
        return {"x-api-key": API_KEY, "content-type": content_type}

    @task(scenarios.WEIGHTS["health"])
    def health(self) -> None:
        self._call("/health", "GET", "/health",
                   lambda r, _: None if r.json().get("status") == "healthy" else f"/health: {r.text[:200]}")

    @task(scenarios.WEIGHTS["ready"])
    def ready(self) -> None:
        def judge(r: Any, _: dict[str, Any]) -> str | None:
            body = r.json()
            return None if body.get("status") == "ready" and body.get("total_workers", 0) >= 1 else f"/ready: {body}"

        self._call("/ready", "GET", "/ready", judge)

    @task(scenarios.WEIGHTS["version"])
    def version(self) -> None:
        self._call("/version", "GET", "/version",
                   lambda r, _: None if r.json().get("name") == "teeprover" else f"/version: {r.text[:200]}")

    @task(scenarios.WEIGHTS["attestation"])
    def attestation(self) -> None:
        nonce = secrets.token_hex(16)

        def judge(r: Any, _: dict[str, Any]) -> str | None:
            body = r.json()
            return None if body.get("nonce") == nonce and body.get("attestation") else f"/attestation: {r.text[:200]}"

        self._call("/attestation", "GET", f"/attestation?nonce={nonce}", judge)

    @task(scenarios.WEIGHTS["check"])
    def check(self) -> None:
        chain = CHAINS[random.choice(circuits.K_RANGE)]

        def judge(r: Any, _: dict[str, Any]) -> str | None:
            answer = cbor2.loads(r.content)
            return None if answer == chain.expected_check else f"/check answered {answer!r}"

        self._call("/check", "POST", "/check", judge, chain.k, data=chain.check_body,
                   headers=self._headers("application/cbor"))

    @task(scenarios.WEIGHTS["k"])
    def k(self) -> None:
        chain = CHAINS[random.choice(circuits.K_RANGE)]
        self._call("/k", "POST", "/k",
                   lambda r, _: None if r.text.strip() == str(chain.k) else f"/k answered {r.text[:50]!r}",
                   chain.k, data=chain.circuit_json, headers=self._headers("application/json"))

    @task(scenarios.WEIGHTS["prove"])
    def prove(self) -> None:
        chain = CHAINS[random.choice(circuits.K_RANGE)]
        binding = secrets.randbelow(1 << 200)

        def keep(r: Any, record: dict[str, Any]) -> None:
            PROOFS.append((record, chain.k, binding, r.content))  # verified in test_stop

        self._call("/prove", "POST", "/prove", keep, chain.k, data=chain.prove_body(binding),
                   headers=self._headers("application/cbor"))


class Plan(LoadTestShape):
    """Users over time from the scenario's stages (``USER_PERIOD_S`` users per request per second)."""

    def tick(self) -> tuple[int, float] | None:
        users = SCENARIO.users_at(self.get_run_time())
        return None if users is None else (users, scenarios.SPAWN_PER_S)


@events.test_stop.add_listener
def _verify_and_write(**_kw: Any) -> None:
    for record, k, binding, proof in PROOFS:
        try:
            valid = CHAINS[k].proof_is_valid(binding, proof)
        except Exception as exc:  # noqa: BLE001 - a proof that cannot even be decoded is a wrong reply
            valid, why = False, f"undecodable proof: {type(exc).__name__}: {exc}"
        else:
            why = "proof does not verify"
        record["verified"] = valid
        if not valid:
            record.update(outcome="wrong", note=why)
    out = Path(os.environ["LOADTEST_RECORDS"])
    out.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
