"""Wiring of the params service: config → ParamStore (+ Prometheus observer) → gRPC server.

Health is NOT_SERVING until the cache directory is usable; a background check
turns it SERVING as soon as it becomes so (e.g. a volume mounted late).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2

from services.common import config as cfgmod
from services.common import logs, metrics
from services.common.server import create_server, run_until_signal
from services.params.metrics import PrometheusObserver
from services.params.service import ParamsServicer
from teeprover.params.manifest import default_manifest_path, load_manifest
from teeprover.params.store import ParamStore
from teeprover.v1 import params_pb2_grpc

log = logging.getLogger("teeprover.params")
SERVICE = "teeprover.v1.Params"
RECHECK_SECONDS = 2.0


def cache_usable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
        return True
    except OSError:
        return False


def create(config: cfgmod.ParamsConfig) -> tuple[grpc.Server, int, health.HealthServicer, ParamsServicer]:
    manifest = load_manifest(config.params_manifest or default_manifest_path())
    params_dir = config.cache_dir / "params"
    servicer = ParamsServicer(None, fetch_enabled=config.fetch_params)

    def register(server: grpc.Server) -> list[str]:
        params_pb2_grpc.add_ParamsServicer_to_server(servicer, server)
        return [SERVICE]

    server, port, health_servicer = create_server(service="params", port=config.params_port, host=config.bind_host,
                                                  register=register, max_message_bytes=config.max_body_bytes)

    def attach() -> bool:
        if not cache_usable(params_dir):
            return False
        servicer.store = ParamStore(params_dir, manifest, disk_budget_bytes=config.params_disk_budget or None,
                                    observer=PrometheusObserver())
        return True

    if not attach():
        log.error("cache directory is not usable; NOT_SERVING until it is", extra={"path": str(params_dir)})
        for name in ("", SERVICE):
            health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

        def recheck() -> None:
            while not attach():
                threading.Event().wait(RECHECK_SECONDS)
            for name in ("", SERVICE):
                health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
            log.info("cache directory usable; SERVING", extra={"path": str(params_dir)})

        threading.Thread(target=recheck, name="cache-recheck", daemon=True).start()
    return server, port, health_servicer, servicer


def main() -> int:
    config = cfgmod.load(cfgmod.ParamsConfig)
    logs.setup("params", config.log_level)
    server, port, health_servicer, servicer = create(config)
    metrics.serve_metrics(config.metrics_port, config.bind_host)
    run_until_signal(server, health_servicer, grace=config.shutdown_grace,
                     ready_message=f"params listening on {config.bind_host}:{port}")
    if servicer._store is not None:
        servicer._store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
