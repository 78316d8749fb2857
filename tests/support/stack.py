"""Start the real stack (`teeprover serve all`: params, attestor, prover, Envoy) for tests.

Every stack gets its own free loopback ports, cache and runtime directories,
so several can run side by side; it is stopped with SIGTERM like an operator
would, and every wait is bounded.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 180.0
SHARED_CACHE = Path(os.environ.get("TEEPROVER_TEST_CACHE", REPO / ".cache" / "test-stack"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    proc: subprocess.Popen[str]
    ports: dict[str, int]
    env: dict[str, str]
    api_key: str | None
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['port']}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.ports['admin_port']}"

    def log_text(self) -> str:
        return "".join(self.lines)


def stack_env(tmp: Path, **overrides: str) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in ("port", "admin_port", "prover_port", "attestor_port", "params_port")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEEPROVER_")}
    env.update({f"TEEPROVER_{k.upper()}": str(v) for k, v in ports.items()})
    env.update({
        "TEEPROVER_METRICS_PORT": "0",
        "TEEPROVER_PLATFORM": "simulated",
        # One cache for every test stack: development parameters and demo keys are made once.
        "TEEPROVER_CACHE_DIR": str(SHARED_CACHE),
        "TEEPROVER_DEV_PARAMS_MAX_K": "11",
        # Midnight's built-in keys need k = 15..18 parameters: only the tests that prove them turn them on.
        "TEEPROVER_BUILTIN_KEYS": "none",
        "TEEPROVER_RUNTIME_DIR": str(tmp / "run"),
        "TEEPROVER_SHUTDOWN_GRACE": "10",
    })
    env.update(overrides)
    if "TEEPROVER_METRICS_PORT" in overrides and overrides["TEEPROVER_METRICS_PORT"] != "0":
        ports["metrics_port"] = int(overrides["TEEPROVER_METRICS_PORT"])
    return env, ports


def stop(proc: subprocess.Popen[Any], timeout: float) -> int:
    """SIGTERM like an operator, SIGKILL after ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(10)


@contextmanager
def running_stack(tmp: Path, services: str = "all", **overrides: str) -> Iterator[Stack]:
    env, ports = stack_env(tmp, **overrides)
    proc = subprocess.Popen(
        [sys.executable, "-m", "teeprover.cli", "serve", services],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    stack = Stack(proc, ports, env, None)
    banner = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            stack.lines.append(line)
            m = re.search(r"development API key: (\S+)", line)
            if m:
                stack.api_key = m.group(1)
            if "Ctrl-C stops" in line:
                banner.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not banner.wait(0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(10)
            reader.join(10)
            if proc.stdout is not None:  # else its ResourceWarning fails whichever test runs next
                proc.stdout.close()
            raise RuntimeError("stack did not start:\n" + stack.log_text()[-5000:])
    try:
        yield stack
    finally:
        stop(proc, timeout=60)
        reader.join(10)
        if proc.stdout is not None:
            proc.stdout.close()
