"""Ctrl-C at any stage of ``teeprover serve all``: it stops at once, says so, and leaves nothing behind.

Stages: the first-start set-up (development parameters being generated into an empty cache),
the start of the children (after the first one is ready), and running.  Every stage ends
with "TEE Prover stopped", no "child ready" for a child that never listened, no process
left, and no ``teeprover-*`` runtime directory left in ``$TMPDIR``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.test_operations import chain_keys
from tests.support.ops import descendants
from tests.support.stack import REPO, stack_env

pytestmark = pytest.mark.e2e

__all__ = ["chain_keys"]  # the fixture, shared with test_operations

# Ctrl-C must take effect within 1 s; the bound leaves room for a loaded CI machine.
STOP_BOUND = 3.0


class Serve:
    """``teeprover serve all`` with its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "teeprover.cli", "serve", "all"], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"never saw {needle!r}:\n{self.text()[-4000:]}")
            time.sleep(0.02)

    def interrupt(self) -> int:
        """Ctrl-C; the exit code, or an AssertionError when it is not gone within STOP_BOUND."""
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(STOP_BOUND)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError(f"still running {STOP_BOUND} s after Ctrl-C:\n{self.text()[-4000:]}") from None
        self.close()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self.reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its new parent to reap it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _env(tmp: Path, **overrides: str) -> dict[str, str]:
    env, _ports = stack_env(tmp, **overrides)
    del env["TEEPROVER_RUNTIME_DIR"]  # the supervisor makes its own, which must go away again
    (tmp / "tmpdir").mkdir()
    env["TMPDIR"] = str(tmp / "tmpdir")
    return env


def _check_clean_stop(serve: Serve, code: int, tmp: Path) -> None:
    text = serve.text()
    assert code == 0, text[-3000:]
    assert "TEE Prover stopped" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert list((tmp / "tmpdir").glob("teeprover-*")) == []


def test_ctrl_c_during_first_start_parameter_generation_stops_at_once(tmp_path: Path) -> None:
    cache = tmp_path / "empty-cache"
    serve = Serve(_env(tmp_path, TEEPROVER_CACHE_DIR=str(cache), TEEPROVER_DEV_PARAMS_MAX_K="12"))
    serve.wait_for("generating INSECURE development parameters", 60)
    children_before = descendants(serve.proc.pid)
    assert children_before, "the set-up runs in a child process"
    code = serve.interrupt()
    _check_clean_stop(serve, code, tmp_path)
    assert "child ready" not in serve.text()
    assert not [p for p in children_before if _alive(p)]
    # The half-made parameter file went with it.
    assert list((cache / "params").glob(".gen-*")) == []


def test_ctrl_c_while_children_start_stops_them_and_logs_no_false_ready(tmp_path: Path) -> None:
    serve = Serve(_env(tmp_path))
    serve.wait_for('"msg":"child ready"', 120)
    code = serve.interrupt()
    _check_clean_stop(serve, code, tmp_path)
    ready = serve.text().count('"msg":"child ready"')
    assert ready < 4 and "Ctrl-C stops" not in serve.text()


def test_ctrl_c_once_running_stops_everything_and_removes_the_runtime_directory(tmp_path: Path) -> None:
    serve = Serve(_env(tmp_path))
    serve.wait_for("Ctrl-C stops", 120)
    assert len(list((tmp_path / "tmpdir").glob("teeprover-*"))) == 1
    children = descendants(serve.proc.pid)
    serve.proc.send_signal(signal.SIGINT)
    code = serve.proc.wait(30)
    serve.close()
    _check_clean_stop(serve, code, tmp_path)
    assert not [p for p in children if _alive(p)]


def test_a_second_ctrl_c_ends_a_drain_at_once(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import re
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.e2e.test_operations import CBOR, long_batch

    env = _env(tmp_path, TEEPROVER_NUM_WORKERS="1", TEEPROVER_SHUTDOWN_GRACE="60")
    serve = Serve(env)
    try:
        serve.wait_for("Ctrl-C stops", 120)
        request.getfixturevalue("chain_keys")  # after the first start made the k <= 11 parameters
        key = re.search(r"development API key: (\S+)", serve.text())
        assert key is not None
        url = f"http://127.0.0.1:{env['TEEPROVER_PORT']}"
        with ThreadPoolExecutor(1) as pool:
            batch = pool.submit(httpx.post, url + "/prove-tx", content=long_batch(64), timeout=120,
                                headers={"x-api-key": key.group(1), "content-type": CBOR})
            deadline = time.monotonic() + 30
            while httpx.get(url + "/ready", timeout=5).json().get("active_workers") != 1:
                assert time.monotonic() < deadline and not batch.done(), "the batch never started"
                time.sleep(0.05)
            serve.proc.send_signal(signal.SIGINT)
            time.sleep(1.0)
            assert serve.proc.poll() is None, "the first Ctrl-C drains: the batch is still running"
            code = serve.interrupt()  # the second one
            with pytest.raises(httpx.HTTPError):
                batch.result(30).raise_for_status()
    finally:
        serve.close()
    assert code == 0 and "TEE Prover stopped" in serve.text(), serve.text()[-3000:]
    assert "second stop request" in serve.text()


def test_children_do_not_outlive_a_sigkilled_supervisor(tmp_path: Path) -> None:
    serve = Serve(_env(tmp_path))
    try:
        serve.wait_for("Ctrl-C stops", 120)
        children = descendants(serve.proc.pid)
        assert len(children) >= 5  # params, prover (+ workers), attestor, gateway, Envoy
        serve.proc.kill()
        serve.proc.wait(10)
        deadline = time.monotonic() + 20
        while [p for p in children if _alive(p)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in children if _alive(p)]
    finally:
        serve.close()
