"""Every CLI command answers a user's mistake or a network failure in one line, with its documented exit code.

Exit codes (teeprover/commands/_common.py, README): 0 success, 1 invalid, 2 a user's
mistake, 3 server unreachable or failing, 130 interrupted.  The commands run as real
processes against real sockets: a port where nothing listens, and a server that
accepts a request and closes the connection without answering.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from teeprover.params.manifest import save_manifest
from tests.support.params_mirror import dead_url, manifest_for

REPO = Path(__file__).resolve().parents[2]
CIRCUIT = str(REPO / "tests" / "fixtures" / "zkir" / "arithmetic.zkir.json")
PREIMAGE = str(REPO / "examples" / "arithmetic.preimage.json")


def _cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "teeprover.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def _one_line(out: subprocess.CompletedProcess[str]) -> str:
    text = out.stdout + out.stderr
    assert "Traceback" not in text, text
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("teeprover: "), out.stderr
    return lines[0]


@pytest.fixture()
def stopped_server() -> str:
    return dead_url().removesuffix("/gone/")


@pytest.fixture()
def hanging_up_server() -> Iterator[str]:
    """Accepts connections, reads the request, closes without a reply."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def serve() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    thread.join(5)
    srv.close()


def _network_commands(url: str, tmp: Path) -> dict[str, list[str]]:
    out = str(tmp / "proof.cbor")
    return {
        "prove --url": ["prove", CIRCUIT, PREIMAGE, "--url", url, "--api-key", "k" * 43, "-o", out],
        "prove --url --seal": ["prove", CIRCUIT, PREIMAGE, "--url", url, "--api-key", "k" * 43, "-o", out, "--seal",
                               "--allow-simulated"],
        "attestation get": ["attestation", "get", "--url", url],
    }


@pytest.mark.parametrize("command", ["prove --url", "prove --url --seal", "attestation get"])
def test_every_network_command_against_a_stopped_server_says_so_in_one_line(
        command: str, stopped_server: str, tmp_path: Path) -> None:
    out = _cli(*_network_commands(stopped_server, tmp_path)[command])
    line = _one_line(out)
    assert out.returncode == 3
    assert f"cannot connect to {stopped_server}: connection refused" in line
    assert not (tmp_path / "proof.cbor").exists()


@pytest.mark.parametrize("command", ["prove --url", "prove --url --seal", "attestation get"])
def test_a_server_that_hangs_up_is_one_line(command: str, hanging_up_server: str, tmp_path: Path) -> None:
    out = _cli(*_network_commands(hanging_up_server, tmp_path)[command])
    line = _one_line(out)
    assert out.returncode == 3
    assert "closed the connection" in line


@pytest.mark.parametrize("command", ["prove --url", "attestation get"])
def test_a_malformed_url_is_a_users_mistake_in_one_line(command: str, tmp_path: Path) -> None:
    # Regression: httpx refused "http://[::1" in the client's constructor and the CLI printed a traceback.
    out = _cli(*_network_commands("http://[::1", tmp_path)[command])
    assert out.returncode == 2
    assert "http://[::1 is not a usable URL" in _one_line(out)


def test_params_fetch_from_a_dead_mirror_is_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    save_manifest(manifest_for({10: b"x" * 100}, [dead_url()]), manifest)
    env = {**os.environ, "TEEPROVER_CACHE_DIR": str(tmp_path / "cache")}
    out = _cli("params", "fetch", "10", "--manifest", str(manifest), env=env)
    assert "mirror" in _one_line(out) or "fetch" in _one_line(out)
    assert out.returncode == 3


def test_missing_input_unwritable_output_and_bad_usage_are_one_line(tmp_path: Path) -> None:
    missing = _cli("k", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json" in _one_line(missing)
    unwritable = _cli("certs", "dev", "-o", "/proc/teeprover-cannot-be-here")
    assert unwritable.returncode == 2 and "/proc/teeprover-cannot-be-here" in _one_line(unwritable)
    usage = _cli("prove", CIRCUIT, PREIMAGE)  # no -o
    assert usage.returncode == 2 and "-o/--out" in _one_line(usage)
    works = _cli("keys", "new")
    assert works.returncode == 0 and works.stderr == ""


@pytest.mark.slow  # under `make test`'s coverage the interrupted generation's exit hangs (see the closing note)
def test_ctrl_c_in_params_generate_is_exit_130_in_one_line_and_leaves_no_partial_file(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "TEEPROVER_CACHE_DIR": str(cache)}
    # k = 18: generation takes far longer than this test waits, and most of it is one native call that
    # ignores signals unless it runs off the main thread (teeprover/params/dev.py).  Coverage's subprocess
    # measurement is left out: its exit hook waits for the abandoned generation thread.
    env = {k: v for k, v in env.items() if not k.startswith(("COVERAGE", "COV_CORE"))}
    proc = subprocess.Popen([sys.executable, "-m", "teeprover.cli", "params", "generate", "18", "--dev"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((cache / "params").glob(".gen-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "generation never started"
        time.sleep(0.05)
    time.sleep(1.0)  # inside the native multiplications by now
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    stdout, stderr = proc.communicate(timeout=60)
    # A liveness bound, not a speed claim: before the fix this waited for the whole native call.
    assert time.monotonic() - sent < 5, "Ctrl-C waited for the generation"
    assert proc.returncode == 130, stderr
    assert stderr == "teeprover: interrupted\n", stderr
    assert "Traceback" not in stdout + stderr
    assert list((cache / "params").glob(".gen-*")) == []
