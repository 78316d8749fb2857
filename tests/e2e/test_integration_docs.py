"""docs/integration.md: every example runs as written against the real stack, and README's ways to a bare
``teeprover`` work.

The Python examples run as scripts from the repository root (as the page says), with the
PROVER_* variables it documents; the Kubernetes probes are executed: each gRPC probe as a
``grpc.health.v1`` check of its port and service, each HTTP probe as a GET through Envoy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.e2e

DOC = REPO / "docs" / "integration.md"
# The ports the examples name, and which of the stack's ports each one is.
PORTS = {50051: "prover_port", 50052: "attestor_port", 50053: "params_port", 6300: "port"}


def blocks(language: str) -> dict[str, str]:
    """Fenced blocks of ``language``, by the "## " heading they are under."""
    found: dict[str, str] = {}
    heading = ""
    for part in re.split(r"^(## .+)$", DOC.read_text(), flags=re.M):
        if part.startswith("## "):
            heading = part[3:].strip()
            continue
        for body in re.findall(rf"^```{language}\n(.*?)^```$", part, flags=re.M | re.S):
            found[heading] = body
    return found


def run_example(code: str, stack: Stack, tmp_path: Path) -> str:
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "PROVER_URL": stack.url, "PROVER_GRPC": f"127.0.0.1:{stack.ports['prover_port']}",
           "PROVER_API_KEY": stack.api_key or "", "PROVER_ALLOW_SIMULATED": "1"}
    done = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_page_has_the_three_examples() -> None:
    assert sorted(blocks("python")) == ["A wallet: attest, seal and prove with `teeprover.client`",
                                        "An internal service: Prove and Check over gRPC"]
    assert list(blocks("yaml")) == ["Kubernetes probes"]
    assert "docs/integration.md" in (REPO / "README.md").read_text()


def test_internal_service_example(stack: Stack, tmp_path: Path) -> None:
    out = run_example(blocks("python")["An internal service: Prove and Check over gRPC"], stack, tmp_path)
    assert "check: [0]" in out
    assert re.search(r"^proof: \d+ bytes of CBOR$", out, re.M)
    assert "refused: INVALID_ARGUMENT BadRequest - " in out


def test_wallet_example(stack: Stack, tmp_path: Path) -> None:
    out = run_example(blocks("python")["A wallet: attest, seal and prove with `teeprover.client`"], stack, tmp_path)
    assert "attested: simulated" in out
    assert "proof verified against the server's verifying key" in out


def test_kubernetes_probes_pass_against_the_running_services(stack: Stack) -> None:
    containers = yaml.safe_load(blocks("yaml")["Kubernetes probes"])["containers"]
    assert [c["name"] for c in containers] == ["prover", "attestor", "params", "gateway"]
    for container in containers:
        for kind in ("readinessProbe", "livenessProbe"):
            probe = container[kind]
            if "grpc" in probe:
                port = stack.ports[PORTS[probe["grpc"]["port"]]]
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING, (container["name"], kind)
            else:
                get = probe["httpGet"]
                port = stack.ports[PORTS[get["port"]]]
                reply = httpx.get(f"http://127.0.0.1:{port}{get['path']}", timeout=10)
                assert reply.status_code == 200, (container["name"], kind, reply.text)


def test_bare_teeprover_after_activating_the_venv(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"
    done = subprocess.run(["bash", "-c", "source .venv/bin/activate && teeprover keys new"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("key:  tpk_"), done.stdout + done.stderr


def test_make_install_links_teeprover_into_a_bin_directory(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    done = subprocess.run(["make", "install", f"BINDIR={bindir}"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    env = {**os.environ, "PATH": f"{bindir}:/usr/bin:/bin"}
    run = subprocess.run(["teeprover", "keys", "new"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("key:  tpk_"), run.stdout + run.stderr
