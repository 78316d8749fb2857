"""Envoy with its upstreams down: a wallet gets 503 JSON in the public error shape, never a hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.stack import REPO, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEEPROVER_")}
    env.update({"TEEPROVER_PORT": str(port), "TEEPROVER_ADMIN_PORT": str(admin),
                # Nothing listens on these: every upstream is down.
                "TEEPROVER_PROVER_PORT": str(free_port()), "TEEPROVER_ATTESTOR_PORT": str(free_port()),
                "TEEPROVER_PARAMS_PORT": str(free_port()),
                "TEEPROVER_RUNTIME_DIR": str(tmp_path_factory.mktemp("gw"))})
    proc = subprocess.Popen([sys.executable, "-m", "services.gateway.server"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).text.strip() == "LIVE":
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("Envoy did not become ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


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
    port, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEEPROVER_")}
    env.update({"TEEPROVER_PORT": str(port), "TEEPROVER_ADMIN_PORT": str(admin),
                "TEEPROVER_RUNTIME_DIR": str(tmp_path)})
    proc = subprocess.Popen([sys.executable, "-m", "services.gateway.server"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
