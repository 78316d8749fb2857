"""Built-in keys in the prover: set up in the background after start, reported by ``/ready``.

The set-up itself is :func:`teeprover.builtin_keys.setup_builtin`, run as
``teeprover setup --builtin`` in a child process, so that the hours of CPU a
cold start may need never hold the GIL of the process answering ``/health``
and ``/ready``; the child runs at low priority, and its file lock makes the
set-up single-flight across replicas sharing a key directory.

Per key the state is ``ready`` (its ``key.json`` records the packaged
circuit), ``setting_up`` (the child is working), ``pending`` (not started
yet), or ``failed`` (the child exited with an error; it is retried after
:data:`RETRY_SECONDS`).  Until a key is ready, a prove for it answers 503 with
``Retry-After`` and a message naming the key.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from services.common.procs import guarded
from teeprover import builtin_keys
from teeprover.errors import TeeProverError, Unavailable

log = logging.getLogger("teeprover.prover.builtin")

RETRY_SECONDS = 60.0
RETRY_AFTER_SECONDS = 30  # what a wallet is told while a key is being set up
NICENESS = 10


class BuiltinKeys:
    def __init__(self, keys_root: Path, locations: Sequence[str], *, dev_params: bool,
                 cache_dir: Path | None = None) -> None:
        self.keys_root = keys_root
        self.locations = tuple(locations)
        self.dev_params = dev_params
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._running = False
        self._error = ""
        # A circuit this build cannot compile is reported as failed, never set up or served.
        self._digests: dict[str, str] = {}
        self._unusable: dict[str, str] = {}
        for loc in self.locations:
            try:
                self._digests[loc] = builtin_keys.circuit_digest(loc)
            except TeeProverError as exc:
                self._unusable[loc] = exc.message
                log.error("built-in circuit cannot be used", extra={"key_location": loc, "error": exc.message})
        self._stop = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None

    # -- state -------------------------------------------------------------------
    def _ready(self, location: str) -> bool:
        digest = self._digests.get(location)
        return digest is not None and builtin_keys.is_ready(self.keys_root, location, digest)

    def states(self) -> dict[str, str]:
        with self._lock:
            running, failed = self._running, bool(self._error)
        out = {}
        for loc in self.locations:
            if loc in self._unusable:
                out[loc] = "failed"
            elif self._ready(loc):
                out[loc] = "ready"
            elif running:
                out[loc] = "setting_up"
            elif failed:
                out[loc] = "failed"
            else:
                out[loc] = "pending"
        return out

    def all_ready(self) -> bool:
        return all(self._ready(loc) for loc in self.locations)

    def require_ready(self, location: str) -> None:
        """Raise 503 (with Retry-After) naming ``location`` if it is a configured built-in not ready yet."""
        if location not in self.locations or self._ready(location):
            return
        state = self.states()[location]
        with self._lock:
            error = self._unusable.get(location, self._error)
        message = f"built-in key {location} is not ready yet ({state.replace('_', ' ')}); retry later"
        details: dict[str, object] = {"key_location": location, "state": state}
        if state == "failed" and error:
            details["error"] = error
        raise Unavailable(message, details=details, retry_after=RETRY_AFTER_SECONDS)

    # -- background set-up ---------------------------------------------------------
    def command(self, locations: Sequence[str]) -> list[str]:
        argv = [sys.executable, "-m", "teeprover.cli", "setup", "--builtin", ",".join(locations),
                "--keys-dir", str(self.keys_root)]
        if self.dev_params:
            argv.append("--dev-params")
        return argv

    def start(self) -> None:
        if not self._digests or all(self._ready(loc) for loc in self._digests):
            return
        self._thread = threading.Thread(target=self._run, name="builtin-keys", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            missing = [loc for loc in self._digests if not self._ready(loc)]
            if not missing:
                return
            with self._lock:
                self._running, self._error = True, ""
            log.info("setting up built-in keys in the background", extra={"keys": missing})
            try:
                self._proc = subprocess.Popen(guarded(self.command(missing), nice=NICENESS),
                                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                _, err = self._proc.communicate()
                code = self._proc.returncode
            except OSError as exc:
                code, err = -1, str(exc)
            with self._lock:
                self._running = False
                if code != 0 and not self._stop.is_set():
                    self._error = (err.strip().splitlines() or [f"exit code {code}"])[-1][:500]
            if code == 0:
                log.info("built-in keys ready", extra={"keys": missing})
                return
            if self._stop.is_set():
                return
            log.error("built-in key set-up failed; retrying", extra={"error": self._error, "retry_s": RETRY_SECONDS})
            self._stop.wait(RETRY_SECONDS)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._thread is not None:
            self._thread.join(timeout)
