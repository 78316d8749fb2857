"""The bench's per-process peak RSS (bench/_rss.py) is the measured program's own, not its parent's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench._rss import MeasureError, measure

MIB = 1 << 20


def _hold(mib: int) -> bytes:
    # Written bytes (not calloc'd zeros, which may stay unmapped): really resident.
    return b"\x01" * (mib * MIB)


def test_measure_ignores_a_large_parent() -> None:
    ballast = _hold(500)
    run = measure([sys.executable, "-c", "pass"])
    assert len(ballast) == 500 * MIB
    assert run.rss_mib < 50
    assert run.wall_s > 0


def test_plain_wait4_of_a_child_reports_the_parent() -> None:
    """Why the launcher exists: the child of a 500 MB process reports >= 500 MB through wait4."""
    ballast = _hold(500)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    _, _, ru = os.wait4(proc.pid, 0)
    proc.returncode = 0
    assert len(ballast) == 500 * MIB
    assert ru.ru_maxrss / 1024 >= 500


def test_measure_sees_the_program_s_own_memory() -> None:
    run = measure([sys.executable, "-c", f"x = b'\\x01' * ({200 * MIB}); print(len(x))"])
    assert 200 <= run.rss_mib < 260
    assert run.cpu_s > 0


def test_measure_reports_a_failing_program() -> None:
    with pytest.raises(MeasureError, match="exited 3.*boom"):
        measure([sys.executable, "-c", "import sys; sys.stderr.write('boom'); sys.exit(3)"])
