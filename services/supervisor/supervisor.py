"""``teeprover serve all``: params, attestor, prover and Envoy as supervised children on loopback.

Starts each child with the same configuration keys (ports per service), waits
until each is healthy (gRPC health for the Python services, Envoy's admin
``/ready``), prints the base URL and a fresh development API key, restarts a
child that dies, and stops everything cleanly on SIGINT/SIGTERM:

* during the first-start set-up (development parameters, demo keys: a child
  process, ``python -m services.supervisor.devsetup``) or while children start, a
  stop request ends everything within a second;
* once up, the gateway drains first (new requests get 503 JSON with
  ``Retry-After``; requests in flight go on), the services drain their own work
  at the same time, and everything is gone within ``TEEPROVER_SHUTDOWN_GRACE``
  (docs/gateway.md, "Draining"); a second Ctrl-C ends every child at once;
* a runtime directory it had to make (no ``TEEPROVER_RUNTIME_DIR``) is removed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.common import config as cfgmod
from services.common.procs import guarded
from teeprover.apikeys import hash_key, new_key

log = logging.getLogger("teeprover.supervisor")

READY_TIMEOUT = 60.0
MAX_RESTART_DELAY = 10.0
# A stop request during set-up or start-up: how long a child gets after SIGTERM before SIGKILL.
QUICK_STOP = 0.5
DRAIN_SWITCH_TIMEOUT = 2.0  # for the gateway to report that it refuses new requests


class Stopped(Exception):
    """A stop request (SIGINT/SIGTERM) arrived before start-up finished."""


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: object  # callable() -> bool
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    log_file: object = field(default=None)

    def start(self) -> None:
        # Own session: Ctrl-C reaches only the supervisor, which stops children in order; SIGTERM (a
        # graceful stop) if the supervisor itself dies, so no child outlives it holding its ports.
        self.proc = subprocess.Popen(guarded(self.argv), env=self.env, start_new_session=True)
        self.started_at = time.monotonic()


def grpc_ready(port: int, service: str = "") -> bool:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
            return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
    except grpc.RpcError:
        return False


def envoy_ready(admin_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/ready", timeout=1.0) as reply:
            return bool(reply.read().strip() == b"LIVE")
    except OSError:
        return False


class Supervisor:
    def __init__(self, config: cfgmod.SupervisorConfig, services: tuple[str, ...] = ("params", "prover", "attestor",
                                                                                       "gateway")) -> None:
        self.config = config
        self.services = services
        self.stopping = threading.Event()
        self.forced = threading.Event()  # a second stop request: no more draining
        self.children: list[Child] = []
        self.api_key: str | None = None
        self.own_runtime_dir: Path | None = None  # made here, removed by cleanup()

    # -- set-up -----------------------------------------------------------------
    def _prepare(self) -> cfgmod.SupervisorConfig:
        cfg = self.config
        runtime = cfg.runtime_dir
        if runtime is None:
            runtime = self.own_runtime_dir = Path(tempfile.mkdtemp(prefix="teeprover-"))
        runtime.mkdir(parents=True, exist_ok=True)
        hpke_file = cfg.hpke_public_key_file or runtime / "hpke_public_key.bin"
        changes: dict[str, object] = {"runtime_dir": runtime, "hpke_public_key_file": hpke_file}
        if cfg.params_manifest is None and "params" in self.services:
            changes["params_manifest"] = self._dev_setup(cfg.cache_dir, cfg.dev_params_max_k)
            changes["builtin_dev_params"] = True  # built-in keys may need dev parameters above that k
        if not cfg.disable_auth and not cfg.api_keys and cfg.api_keys_file is None:
            # A development key: printed once, stored only as its hash.
            self.api_key = new_key()
            key_file = runtime / "api_keys.sha256"
            key_file.write_text(f"# development key made by `teeprover serve all`\n{hash_key(self.api_key)}\n")
            key_file.chmod(0o600)
            changes["api_keys_file"] = key_file
        return dataclasses.replace(cfg, **changes)  # type: ignore[arg-type]

    def _dev_setup(self, cache_dir: Path, max_k: int) -> Path:
        """Development parameters and demo keys, made in a child process so that a stop request ends it at
        once (a native multi-exponentiation holds the interpreter for seconds; a child can simply be ended)."""
        from services.supervisor import devsetup

        argv = [sys.executable, "-m", "services.supervisor.devsetup", str(cache_dir), str(max_k), self.config.log_level]
        proc = subprocess.Popen(guarded(argv), start_new_session=True)
        while proc.poll() is None:
            if self.stopping.wait(0.05):
                _end(proc, QUICK_STOP)
                raise Stopped
        if proc.returncode != 0:
            raise RuntimeError(f"first-start set-up (development parameters, demo keys) failed "
                               f"with exit code {proc.returncode}")
        return devsetup.manifest_path(cache_dir)

    def _children(self, cfg: cfgmod.SupervisorConfig) -> list[Child]:
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(cfgmod.PREFIX)}
        common = cfgmod.to_environ(cfg)
        py = sys.executable

        def metrics_port(offset: int) -> dict[str, str]:
            # Under `serve all`: prover +1, attestor +2, params +3 (0 keeps them all off).
            return {"TEEPROVER_METRICS_PORT": str(cfg.metrics_port + offset if cfg.metrics_port else 0)}

        specs = {
            "params": ([py, "-m", "services.params.server"], metrics_port(3),
                       lambda: grpc_ready(cfg.params_port, "teeprover.v1.Params")),
            "attestor": ([py, "-m", "services.attestor.server"], metrics_port(2),
                         lambda: grpc_ready(cfg.attestor_port, "teeprover.v1.Attestor")),
            "prover": ([py, "-m", "services.prover.server"], metrics_port(1),
                       lambda: grpc_ready(cfg.prover_port, "teeprover.v1.Prover")),
            "gateway": ([py, "-m", "services.gateway.server"], {}, lambda: envoy_ready(cfg.admin_port)),
        }
        children = []
        for name in self.services:
            argv, extra, ready = specs[name]
            children.append(Child(name, argv, {**base_env, **common, **extra}, ready))
        return children

    # -- running ----------------------------------------------------------------
    def _wait_ready(self, child: Child, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise Stopped
            if child.proc is not None and child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.proc.returncode} during start-up")
            if child.ready():  # type: ignore[operator]
                return
            self.stopping.wait(0.1)
        raise RuntimeError(f"{child.name} was not healthy after {timeout:.0f} s")

    def start(self) -> None:
        """Set up and start every child; raises :class:`Stopped` when a stop request came first."""
        cfg = self._prepare()
        self.children = self._children(cfg)
        for child in self.children:
            if self.stopping.is_set():
                raise Stopped
            child.start()
            self._wait_ready(child)
            log.info("child ready", extra={"child": child.name, "pid": child.proc.pid if child.proc else None})
        self.effective = cfg

    def banner(self) -> str:
        cfg = self.effective
        lines = [f"TEE Prover is up: http://127.0.0.1:{cfg.port}"]
        if cfg.tls_port:
            lines.append(f"  HTTPS:           https://127.0.0.1:{cfg.tls_port}")
        if self.api_key:
            demo = Path(__file__).resolve().parents[2] / "teeprover" / "circuits" / "demo" / "arithmetic.zkir.json"
            lines.append(f"  development API key: {self.api_key}")
            lines.append(f"  try: curl -H 'X-API-Key: {self.api_key}' -H 'content-type: application/json' "
                         f"--data-binary @{demo} http://127.0.0.1:{cfg.port}/k")
        elif cfg.disable_auth:
            lines.append("  WARNING: authentication is disabled")
        platform = cfg.platform + (" (NOT SECURE: development only)" if cfg.platform == "simulated" else "")
        lines.append(f"  platform: {platform} · Envoy admin: http://127.0.0.1:{cfg.admin_port} · Ctrl-C stops")
        return "\n".join(lines)

    def watch(self) -> None:
        """Restart children that die, with a growing delay, until asked to stop."""
        while not self.stopping.wait(0.2):
            for child in self.children:
                if child.proc is None or child.proc.poll() is None:
                    continue
                code = child.proc.returncode
                delay = min(MAX_RESTART_DELAY, 0.5 * 2 ** min(child.restarts, 5))
                if time.monotonic() - child.started_at > 60:
                    child.restarts = 0
                log.warning("child died, restarting", extra={"child": child.name, "exit_code": code,
                                                             "delay_s": delay})
                if self.stopping.wait(delay):
                    return
                child.restarts += 1
                child.start()

    def stop(self, grace: float | None = None) -> int:
        """Drain and stop every child within ``grace`` s (default TEEPROVER_SHUTDOWN_GRACE); 1 if one was killed.

        The gateway goes first: once it refuses new requests (503 + Retry-After), every service gets
        SIGTERM at once and finishes the work it has, while the gateway relays the last replies and
        exits when it has none left in flight.
        """
        self.stopping.set()
        grace = self.config.shutdown_grace if grace is None else grace
        deadline = time.monotonic() + grace
        live = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        gateway = next((c for c in live if c.name == "gateway"), None)
        if gateway is not None:
            assert gateway.proc is not None
            gateway.proc.send_signal(signal.SIGTERM)
            self._wait_draining(gateway)
        for child in live:
            if child is not gateway and child.proc is not None:
                child.proc.send_signal(signal.SIGTERM)
        worst = 0
        for child in live:
            assert child.proc is not None
            limit = deadline + 5
            while child.proc.poll() is None and time.monotonic() < limit and not self.forced.is_set():
                self.forced.wait(0.05)
            if child.proc.poll() is None:
                if self.forced.is_set():
                    log.warning("second stop request: child ended now", extra={"child": child.name})
                else:
                    log.warning("child did not stop in time, killed", extra={"child": child.name})
                    worst = 1
                _end(child.proc, 0)
        return worst

    def _wait_draining(self, gateway: Child) -> None:
        from services.gateway.server import is_draining

        deadline = time.monotonic() + DRAIN_SWITCH_TIMEOUT
        while (time.monotonic() < deadline and gateway.proc is not None and gateway.proc.poll() is None
               and not self.forced.is_set()):
            try:
                if is_draining(self.effective.admin_port):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)

    def quick_stop(self) -> None:
        """A stop request during start-up: nothing is serving yet, so every started child ends at once."""
        self.stopping.set()
        for child in self.children:
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        for child in self.children:
            if child.proc is not None:
                _end(child.proc, QUICK_STOP)

    def cleanup(self) -> None:
        if self.own_runtime_dir is not None:
            shutil.rmtree(self.own_runtime_dir, ignore_errors=True)


def _end(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (if still running), then after ``timeout`` s SIGKILL to its whole process group (every child
    runs in its own session, so the group is the child and what it started, e.g. the prover's workers)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait(5)


def run(config: cfgmod.SupervisorConfig, services: tuple[str, ...] | None = None) -> int:
    # The prover starts before the attestor: it publishes the HPKE key the attestor binds.
    sup = Supervisor(config, services or ("params", "prover", "attestor", "gateway"))

    def _signal(signum: int, _frame: object) -> None:
        if sup.stopping.is_set():
            sup.forced.set()  # only flags here: the handler runs between any two bytecodes of the main thread
        sup.stopping.set()

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    try:
        try:
            sup.start()
        except Stopped:
            log.info("stop requested during start-up")
            sup.quick_stop()
            print("TEE Prover stopped", flush=True)
            return 0
        except RuntimeError as exc:
            log.error("start-up failed", extra={"reason": str(exc)})
            sup.quick_stop()
            return 1
        print(sup.banner(), flush=True)
        sup.watch()
        code = sup.stop()
        print("TEE Prover stopped", flush=True)
        return code
    finally:
        sup.cleanup()
