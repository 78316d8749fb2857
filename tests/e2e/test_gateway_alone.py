"""Envoy with its upstreams down: a wallet gets 503 JSON in the public error shape, never a hang."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.stack import REPO, stack_env, stop

pytestmark = pytest.mark.e2e


@contextmanager
def gateway_only(tmp: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Only Envoy: the prover, attestor and params ports it routes to have nothing listening."""
    env, ports = stack_env(tmp)
    proc = subprocess.Popen([sys.executable, "-m", "services.gateway.server"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{ports['admin_port']}/ready", timeout=1).text.strip() == "LIVE":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("Envoy did not become ready")
        yield proc, f"http://127.0.0.1:{ports['port']}"
    finally:
        stop(proc, timeout=20)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with gateway_only(tmp_path_factory.mktemp("gw")) as (_proc, url):
        yield url


@pytest.mark.parametrize("path", ["/health", "/ready", "/attestation", "/fetch-params/10"])
def test_upstream_down_is_503_json(gateway: str, path: str) -> None:
    reply = httpx.get(gateway + path, timeout=10)
    assert reply.status_code == 503
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["error"] == "ServiceUnavailable"
    assert body["request_id"] == reply.headers["x-request-id"]
    assert set(body) == {"error", "message", "details", "request_id"}


def test_envoy_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    with gateway_only(tmp_path) as (proc, _url):
        assert stop(proc, timeout=20) == 0
