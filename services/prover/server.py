"""Wiring of the prover service: config → key ring, worker pool, core → gRPC server."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import grpc

from services.common import config as cfgmod
from services.common import logs, metrics
from services.common.routes import PROTECTED_METHODS
from services.common.server import create_server, run_until_signal
from services.prover import jobs
from services.prover.builtin import BuiltinKeys
from services.prover.core import ProverCore, VersionInfo
from services.prover.metrics import ProverMetrics
from services.prover.pool import WorkerPool, default_memory_budget
from services.prover.service import ProverServicer
from teeprover import builtin_keys, hpke
from teeprover.apikeys import KeyRing
from teeprover.errors import Unauthenticated
from teeprover.keystore import KeyStore
from teeprover.v1 import prover_pb2_grpc

log = logging.getLogger("teeprover.prover")

SERVICE = "teeprover.v1.Prover"


MAX_IN_FLIGHT_UNBOUNDED = 64  # job requests in flight when the queue is unbounded (TEEPROVER_JOB_CAPACITY=0)
SPARE_HANDLER_THREADS = 8  # gRPC threads beyond the job requests: Health, Ready, Version, VerifyingKey

def make_auth_check(config: cfgmod.ProverConfig):  # type: ignore[no-untyped-def]
    if config.disable_auth:
        return None
    ring = KeyRing.from_sources(config.api_keys, config.api_keys_file)

    def check(full_method: str, context: grpc.ServicerContext) -> None:
        if full_method not in PROTECTED_METHODS:
            return
        presented = next((v for k, v in context.invocation_metadata() if k == "x-api-key"), None)
        try:
            ring.check(presented if isinstance(presented, str) else None)
        except Unauthenticated as exc:
            # Never log the key; the peer, route and request id are enough to investigate.
            log.warning("authentication failed", extra={"peer": context.peer(), "route": full_method,
                                                        "reason": exc.message})
            raise

    return check


def publish_public_key(path: Path, public: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(public)
    os.replace(tmp, path)


def create(config: cfgmod.ProverConfig, pool: WorkerPool | None = None,
           prover_metrics: ProverMetrics | None = None) -> tuple[grpc.Server, int, object, ProverCore]:
    """``prover_metrics``: default one on the process-wide Prometheus registry (pass one on a
    fresh ``CollectorRegistry`` to build several servers in one process). A pool passed in
    keeps its own observer; its gauges are still exported."""
    config.require_api_keys()
    if prover_metrics is None:
        prover_metrics = ProverMetrics()
    auth = make_auth_check(config)
    if config.disable_auth:
        log.warning("AUTHENTICATION IS DISABLED (TEEPROVER_DISABLE_AUTH): development only, never in production")
    if pool is None:
        pool = WorkerPool(num_workers=config.num_workers, capacity=config.job_capacity,
                          initializer=jobs.init, observer=prover_metrics.observe,
                          memory_budget=config.memory_budget or default_memory_budget())
        # Serve (and report healthy) only once the worker processes are up.
        if not pool.wait_ready(120):
            log.error("worker processes did not start")
    # Job requests in flight (waiting + running; the pool's own queue bound answers first), and gRPC threads
    # for them plus spare ones, so that Health/Ready/Version never wait behind a backlog (core.py).
    in_flight = config.job_capacity + config.num_workers + 4 if config.job_capacity else MAX_IN_FLIGHT_UNBOUNDED
    core = ProverCore(pool, max_body_bytes=config.max_body_bytes, job_timeout=config.job_timeout,
                      version=VersionInfo.detect(auth_disabled=config.disable_auth,
                                                 build_date=config.build_date_override),
                      observer=prover_metrics, max_in_flight=in_flight)
    prover_metrics.watch_pool(pool.stats)
    core.keys = KeyStore(config.keys_dir or config.cache_dir / "keys")
    core.hpke_keys = hpke.generate()
    builtin = builtin_keys.parse_selection(config.builtin_keys)
    if builtin:
        core.builtin = BuiltinKeys(config.keys_dir or config.cache_dir / "keys", builtin,
                                   dev_params=config.builtin_dev_params, cache_dir=config.cache_dir)
        core.builtin.start()
    if config.hpke_public_key_file is not None:
        # The attestor binds this key into every attestation document (docs/attestation.md).
        publish_public_key(config.hpke_public_key_file, core.hpke_keys.public_bytes)

    def register(server: grpc.Server) -> list[str]:
        prover_pb2_grpc.add_ProverServicer_to_server(ProverServicer(core), server)
        return [SERVICE]

    server, port, health = create_server(service="prover", port=config.prover_port, host=config.bind_host,
                                         register=register, max_message_bytes=config.max_body_bytes, before=auth,
                                         max_workers=in_flight + SPARE_HANDLER_THREADS)
    return server, port, health, core


def main() -> int:
    config = cfgmod.load(cfgmod.ProverConfig)
    logs.setup("prover", config.log_level)
    server, port, health, core = create(config)
    metrics.serve_metrics(config.metrics_port, config.bind_host)

    def drain(grace: float) -> None:
        # New work is refused (503) from here on; running and queued jobs get ``grace`` seconds.
        core.draining = True
        stats = core.pool.stats()
        log.info("draining", extra={"queue_size": stats["queue_size"], "active_workers": stats["active_workers"],
                                    "grace_s": grace})
        clean = core.pool.drain(grace)  # type: ignore[attr-defined]
        log.info("drained" if clean else "drain grace expired; unfinished jobs failed", extra={"clean": clean})

    run_until_signal(server, health, grace=config.shutdown_grace, on_drain=drain,  # type: ignore[arg-type]
                     ready_message=f"prover listening on {config.bind_host}:{port}")
    if core.builtin is not None:
        core.builtin.stop()
    core.pool.close()  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
