"""Wall time, CPU time and peak RSS of one child process, measured so that the figure is the child's own.

Why a launcher: Linux records the peak RSS of the memory a process had *before* ``exec`` into the
rusage it reports (``exec_mmap`` keeps the old mm's high-water mark in ``signal->maxrss``).  A child
forked (or vforked) from a big bench process therefore reports at least the parent's size: a cold run
once showed 445 MiB for both provers at k=14 and k=16.  So the bench never spawns a measured program
itself.  It starts this small launcher (``python -I -S``, ~10 MB), which spawns the program and reports
its ``wait4`` rusage back over a pipe: the figure is then ``max(launcher, program)``, i.e. the
program's own peak whenever that is above ~10 MB.  The launcher also times the program, so Python's
start-up of the launcher itself is not counted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from bench._circom import ToolError

# Runs as ``python -I -S -c LAUNCHER <result fd> argv...``: isolated, no site-packages (small and fast).
LAUNCHER = r"""
import json, os, sys, time
fd = int(sys.argv[1])
os.set_inheritable(fd, False)
t0 = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
os.write(fd, json.dumps({"status": os.waitstatus_to_exitcode(status), "wall_s": wall,
                         "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss}).encode())
"""


class MeasureError(ToolError):
    """The measured program failed (non-zero exit) or the launcher did not report."""


@dataclass
class Run:
    wall_s: float
    cpu_s: float
    rss_mib: float


def measure(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | os.PathLike[str] | None = None) -> Run:
    """Run ``argv`` (stdout discarded) and return its wall time, CPU time and own peak RSS."""
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", LAUNCHER, str(write_fd), *argv],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(write_fd,), env=env,
                                cwd=cwd)
        os.close(write_fd)
        write_fd = -1
        _, err = proc.communicate()
        with os.fdopen(read_fd, "rb") as f:
            read_fd = -1
            report = f.read()
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    if proc.returncode != 0 or not report:
        raise MeasureError(f"launcher for {argv[:3]} exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    res = json.loads(report)
    if res["status"] != 0:
        raise MeasureError(f"{argv[:3]} exited {res['status']}: {err.decode(errors='replace')[-2000:]}")
    return Run(wall_s=res["wall_s"], cpu_s=res["cpu_s"], rss_mib=res["maxrss_kib"] / 1024)


__all__ = ["Run", "measure", "MeasureError", "LAUNCHER"]
