"""Child processes that cannot outlive their parent.

``teeprover serve all`` starts each service in its own session (a terminal's
Ctrl-C reaches only the supervisor, which then stops them in order), and the
gateway starts Envoy the same way.  A child in its own session is not killed
with its parent's process group, so a SIGKILLed parent would leave it running,
holding its ports.  Linux's ``prctl(PR_SET_PDEATHSIG)`` makes the kernel send
the child a signal when its parent dies; the standard library has no wrapper
for it, hence ctypes.
"""

from __future__ import annotations

import ctypes
import signal
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for :class:`subprocess.Popen`: the child gets ``signum`` when its parent dies."""

    def preexec() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)
        except (OSError, AttributeError):
            pass  # not Linux: nothing to set

    return preexec
