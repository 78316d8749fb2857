"""Wiring of the attestor: platform detection, the evidence provider, the keys it binds → gRPC server."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import sys
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from services.attestor.core import AttestorCore
from services.attestor.service import AttestorServicer
from services.common import config as cfgmod
from services.common import logs, metrics
from services.common.server import create_server, run_until_signal
from teeprover.attestation import evidence
from teeprover.v1 import attestor_pb2_grpc

log = logging.getLogger("teeprover.attestor")
SERVICE = "teeprover.v1.Attestor"


def tls_spki_sha256(config: cfgmod.AttestorConfig) -> bytes | None:
    if config.tls_cert is None:
        return None
    cert = x509.load_pem_x509_certificate(config.tls_cert.read_bytes())
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def create(config: cfgmod.AttestorConfig) -> tuple[grpc.Server, int, Any, AttestorCore]:
    platform = evidence.detect_platform() if config.platform == "auto" else config.platform
    provider = evidence.default_provider(platform, services=evidence.Services(
        pccs_url=config.pccs_url, maa_url=config.maa_url, imds_url=config.imds_url))
    spki = tls_spki_sha256(config)
    hpke_file = config.hpke_public_key_file
    if platform == "simulated":
        log.warning("platform is SIMULATED: attestation documents are NOT SECURE (development only)")

    def collect(nonce: bytes | None, now: dt.datetime) -> dict[str, Any]:
        # Read per request: a restarted prover publishes a new key, and documents must bind the current one.
        hpke = hpke_file.read_bytes() if hpke_file is not None and hpke_file.exists() else None
        return evidence.collect(platform, nonce, spki, hpke, now, provider=provider)

    core = AttestorCore(collect, platform)
    core.warm_up()

    def register(server: grpc.Server) -> list[str]:
        attestor_pb2_grpc.add_AttestorServicer_to_server(AttestorServicer(core), server)
        return [SERVICE]

    server, port, health = create_server(service="attestor", port=config.attestor_port, host=config.bind_host,
                                         register=register, max_message_bytes=config.max_body_bytes)
    return server, port, health, core


def main() -> int:
    config = cfgmod.load(cfgmod.AttestorConfig)
    logs.setup("attestor", config.log_level)
    server, port, health, core = create(config)
    metrics.serve_metrics(config.metrics_port, config.bind_host)
    run_until_signal(server, health, grace=config.shutdown_grace,
                     ready_message=f"attestor listening on {config.bind_host}:{port} (platform {core.platform})")
    core.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
