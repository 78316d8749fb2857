"""Child processes that cannot outlive their parent, started without ``preexec_fn``.

``teeprover serve all`` starts each service in its own session (a terminal's
Ctrl-C reaches only the supervisor, which then stops them in order), and the
gateway starts Envoy the same way.  A child in its own session is not killed
with its parent's process group, so a SIGKILLed parent would leave it running,
holding its ports.  Linux's ``prctl(PR_SET_PDEATHSIG)`` makes the kernel send
the child a signal when its parent dies; the standard library has no wrapper
for it, hence ctypes.

The signal is set by a small trampoline (``python -m services.common.procs``)
that then ``exec``\\ s the real command (the setting survives ``exec``), not by
a ``preexec_fn``: Python runs a ``preexec_fn`` between ``fork`` and ``exec`` in
a copy of a multi-threaded process, together with every ``os.register_at_fork``
hook, and a lock another thread held at the fork then never opens in the child,
so ``Popen`` waits for the ``exec`` for ever (the standard library documents
the hazard; we saw ``serve all`` hang there, under coverage's fork hook).
Without a ``preexec_fn`` ``subprocess`` forks and execs in C (``vfork``).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def guarded(argv: list[str], *, signum: int = signal.SIGTERM, nice: int = 0) -> list[str]:
    """``argv`` wrapped so that the child gets ``signum`` when the calling thread's process dies, and
    runs ``nice`` steps nicer: pass the result to :class:`subprocess.Popen` (the child's pid is the
    command's own, the trampoline ``exec``\\ s into it)."""
    return [sys.executable, "-m", "services.common.procs", str(os.getpid()), str(int(signum)), str(int(nice)),
            "--", *argv]


def _set_parent_death_signal(signum: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):
        pass  # not Linux: nothing to set


def trampoline(args: list[str]) -> None:
    """``PARENT_PID SIGNUM NICE -- COMMAND...``: set the parent-death signal and niceness, then exec."""
    if len(args) < 5 or args[3] != "--":
        sys.exit("usage: python -m services.common.procs PARENT_PID SIGNUM NICE -- COMMAND...")
    parent, signum, nice, command = int(args[0]), int(args[1]), int(args[2]), args[4:]
    _set_parent_death_signal(signum)
    if os.getppid() != parent:  # the parent died before the signal was armed: nobody will send it
        sys.exit(128 + signum)
    if nice:
        os.nice(nice)
    os.execvp(command[0], command)


if __name__ == "__main__":
    trampoline(sys.argv[1:])
