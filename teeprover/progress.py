"""Stage lines with the elapsed time for long operations, on a terminal only.

Library code that runs for minutes (key set-up in teeprover/keysetup.py) takes a
``Progress`` and defaults to ``QUIET``; the commands pass ``Progress()``.

    progress = Progress()                       # enabled when stderr is a TTY
    with progress.stage("generating keys"):
        ...                                     # "generating keys … 3.2 s", then "generating keys: 5.1 s"

Written by hand rather than with tqdm (which ``params fetch`` uses for its byte
counts): a stage has no count to advance, and tqdm only redraws on ``update``,
so the elapsed time would freeze during one long call.  A small thread redraws
the line four times a second instead.  When stderr is not a terminal nothing is
printed, so scripts and logs see only the result.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

REDRAW_SECONDS = 0.25
_CLEAR_LINE = "\r\x1b[K"


class Progress:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self._lock = threading.Lock()

    def _draw(self, text: str, end: str = "") -> None:
        with self._lock:
            self.stream.write(_CLEAR_LINE + text + end)
            self.stream.flush()

    @contextmanager
    def stage(self, text: str) -> Iterator[None]:
        """Show ``text`` with a running clock while the block runs, then how long it took."""
        if not self.enabled:
            yield
            return
        start = time.monotonic()
        done = threading.Event()

        def redraw() -> None:
            while not done.wait(REDRAW_SECONDS):
                self._draw(f"{text} … {time.monotonic() - start:.1f} s")

        self._draw(f"{text} …")
        ticker = threading.Thread(target=redraw, name="progress", daemon=True)
        ticker.start()
        outcome = "failed after "
        try:
            yield
            outcome = ""
        finally:
            done.set()
            ticker.join(1.0)
            # Always end the line: an error message or the result starts on a fresh one.
            self._draw(f"{text}: {outcome}{time.monotonic() - start:.1f} s", end="\n")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


QUIET = Progress(enabled=False)
