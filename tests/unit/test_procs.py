"""services.common.procs: children that die with their parent, started without a preexec_fn."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from services.common.procs import guarded

REPO = Path(__file__).resolve().parents[2]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def test_the_child_is_the_command_itself_and_dies_when_its_parent_is_sigkilled() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import subprocess, sys
            from services.common.procs import guarded
            child = subprocess.Popen(guarded(["sleep", "60"]), start_new_session=True)
            print(child.pid, flush=True)
            child.wait()
        """)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        for _ in range(100):  # the trampoline execs into sleep
            if Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0] == b"sleep":
                break
            time.sleep(0.05)
        assert Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"60"]
        assert not _gone(child)
        parent.kill()
        parent.wait(10)
        for _ in range(200):
            if _gone(child):
                break
            time.sleep(0.05)
        assert _gone(child), "the child outlived its SIGKILLed parent"
    finally:
        parent.kill()
        parent.wait(10)
        parent.stdout.close()
        if not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_niceness_is_applied_before_the_command_runs() -> None:
    out = subprocess.run(guarded([sys.executable, "-c", "import os; print(os.nice(0))"], nice=5),
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert int(out) == os.nice(0) + 5


def test_a_parent_that_died_before_the_signal_was_armed_ends_the_child() -> None:
    # pid 1 is not our parent: the trampoline must not run the command
    argv = guarded(["touch", "never"], signum=signal.SIGTERM)
    argv[3] = "1"
    res = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    assert res.returncode == 128 + signal.SIGTERM
    assert not (REPO / "never").exists()


def test_bad_trampoline_arguments_are_a_usage_error() -> None:
    res = subprocess.run([sys.executable, "-m", "services.common.procs", "1", "15"], cwd=REPO,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 1 and "usage" in res.stderr


_FORK_HOOK_HANG = textwrap.dedent("""
    import os, subprocess, sys, threading
    from services.common.procs import guarded
    lock = threading.Lock()
    held = threading.Event()
    def holder():
        with lock:
            held.set()
            threading.Event().wait(60)
    threading.Thread(target=holder, daemon=True).start()
    held.wait()
    # like coverage's fork patch or any library's at-fork hook that takes a lock another thread holds
    os.register_at_fork(after_in_child=lambda: lock.acquire())
    if sys.argv[1] == "preexec":
        subprocess.Popen(["true"], preexec_fn=lambda: None).wait()
    else:
        subprocess.Popen(guarded(["true"])).wait()
    print("started", flush=True)
""")


@pytest.mark.parametrize("how, hangs", [("guarded", False), ("preexec", True)])
def test_a_lock_held_at_fork_by_another_thread_cannot_hang_the_start(how: str, hangs: bool) -> None:
    """The hazard guarded() avoids, shown on both paths: a preexec_fn runs the at-fork hooks in the child."""
    proc = subprocess.Popen([sys.executable, "-c", _FORK_HOOK_HANG, how], cwd=REPO, stdout=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=20 if not hangs else 5)
        assert not hangs and out.strip() == "started"
    except subprocess.TimeoutExpired:
        assert hangs, "starting a child through guarded() hung"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_no_code_starts_a_process_with_a_preexec_fn() -> None:
    found = []
    for root in ("services", "teeprover"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.keyword) and node.arg == "preexec_fn":
                    found.append(f"{path.relative_to(REPO)}:{node.value.lineno}")
    assert found == []
