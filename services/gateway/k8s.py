"""Render the Envoy configuration for Kubernetes (``deploy/k8s/base/envoy.yaml``).

Same routes, filters and limits as the local gateway (``render.render``), with the public listeners
on all interfaces with TLS, the descriptor set at its path inside the image, and the upstreams
pointed at the cluster's Services.  The prover and attestor run as many pods behind a *headless*
Service, so Envoy sees every pod (STRICT_DNS) and spreads the work itself (:func:`balance`):

* **least request** (power of two choices): a proof holds a worker for seconds to minutes, so
  the pod with fewer requests in flight is the one with a free worker soonest;
* **outlier detection on local-origin errors only** (connect failure, reset, timeout to the pod):
  a killed or partitioned pod is ejected after two of them.  HTTP 5xx is not counted: a busy
  prover answers 503 "queue full", which is load, not a fault;
* **active gRPC health checks** of each pod: a draining prover (NOT_SERVING) stops getting work;
* **retries only where nothing ran**: ``connect-failure``, ``refused-stream`` and
  ``reset-before-request`` (the pod never saw the request: no connection, the HTTP/2 stream
  refused, or the connection gone before a byte of the request was sent), on another pod.  Never
  ``reset`` or a timeout: the proof may have run, and a timed-out proof would only time out again
  somewhere else while holding a second worker;
* a 503 that Envoy makes itself (no healthy pod, the pod died mid-request) carries
  ``Retry-After``, so a wallet knows to come back rather than give up.

``make k8s-config`` rewrites the file; tests check it is up to date and that Envoy validates it.
:func:`render_balanced` renders the same policy over loopback endpoints, for the scale-out test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.common.config import GatewayConfig
from services.gateway import render

IMAGE_ROOT = Path("/opt/teeprover")
UPSTREAMS = {"prover": ("prover", 50051), "attestor": ("prover", 50052), "params": ("params", 50053)}
OUTPUT = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "base" / "envoy.yaml"

# Clusters of many pods (the prover Deployment serves both); params is one pod with its disk.
BALANCED = {"prover": "teeprover.v1.Prover", "attestor": "teeprover.v1.Attestor"}
RETRY_ON = "connect-failure,refused-stream,reset-before-request"
RETRY_AFTER_S = 1  # on Envoy's own 503: another pod (or this one, restarted) is usually there at once

K8S_CONFIG = GatewayConfig(bind_host="0.0.0.0", port=6300, tls_port=6443, tls_cert=Path("/etc/teeprover/tls/tls.crt"),
                           tls_key=Path("/etc/teeprover/tls/tls.key"), admin_port=9901)


def _split(text: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], str]:
    """render.render's output: a YAML file whose ``listeners`` and ``clusters`` are one JSON line each."""
    head, sep, rest = text.partition("  listeners: ")
    listeners_line, _, rest = rest.partition("\n")
    middle, sep2, rest = rest.partition("  clusters: ")
    clusters_line, _, tail = rest.partition("\n")
    if not sep or not sep2 or middle:
        raise ValueError("unexpected layout of render.render's output (listeners and clusters lines)")
    return head, json.loads(listeners_line), json.loads(clusters_line), tail


def _join(head: str, listeners: list[dict[str, Any]], clusters: list[dict[str, Any]], tail: str) -> str:
    return f"{head}  listeners: {json.dumps(listeners)}\n  clusters: {json.dumps(clusters)}\n{tail}"


def retry_policy() -> dict[str, Any]:
    return {
        "retry_on": RETRY_ON,
        "num_retries": 2,
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
                                      "PreviousHostsPredicate"}}],
        "host_selection_retry_max_attempts": 5,
    }


def _balance_cluster(cluster: dict[str, Any], service: str) -> None:
    cluster["lb_policy"] = "LEAST_REQUEST"
    cluster["outlier_detection"] = {
        "split_external_local_origin_errors": True,
        "consecutive_local_origin_failure": 2,
        "enforcing_consecutive_local_origin_failure": 100,
        "enforcing_consecutive_5xx": 0,
        "enforcing_consecutive_gateway_failure": 0,
        "enforcing_success_rate": 0,
        "enforcing_local_origin_success_rate": 0,
        "interval": "2s",
        "base_ejection_time": "15s",
        "max_ejection_percent": 50,
    }
    cluster["health_checks"] = [{
        "timeout": "1s", "interval": "2s", "unhealthy_threshold": 1, "healthy_threshold": 1,
        "no_traffic_interval": "2s", "grpc_health_check": {"service_name": service},
    }]


def _retry_after_on_local_503(listener: dict[str, Any]) -> None:
    for chain in listener["filter_chains"]:
        for flt in chain["filters"]:
            for mapper in flt["typed_config"].get("local_reply_config", {}).get("mappers", []):
                if mapper["filter"].get("status_code_filter", {}).get("comparison", {}).get(
                        "value", {}).get("default_value") == 503:
                    mapper.setdefault("headers_to_add", []).append(
                        {"header": {"key": "retry-after", "value": str(RETRY_AFTER_S)},
                         "append_action": "ADD_IF_ABSENT"})


def _retry_balanced_routes(listener: dict[str, Any]) -> None:
    for chain in listener["filter_chains"]:
        for flt in chain["filters"]:
            for vhost in flt["typed_config"].get("route_config", {}).get("virtual_hosts", []):
                for route in vhost["routes"]:
                    if route.get("route", {}).get("cluster") in BALANCED:
                        route["route"]["retry_policy"] = retry_policy()


def balance(text: str, endpoints: dict[str, list[tuple[str, int]]], *, dns: bool) -> str:
    """Apply the multi-pod policy to ``render.render`` output; ``endpoints`` replaces each cluster's hosts."""
    head, listeners, clusters, tail = _split(text)
    for listener in listeners:
        _retry_after_on_local_503(listener)
        _retry_balanced_routes(listener)
    for cluster in clusters:
        name = cluster["name"]
        hosts = endpoints[name]
        cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
            for host, port in hosts]}]
        if dns:
            cluster["type"] = "STRICT_DNS"
            cluster["dns_lookup_family"] = "V4_ONLY"
            cluster["dns_refresh_rate"] = "5s"  # pods come and go: follow the headless Service closely
        if name in BALANCED:
            _balance_cluster(cluster, BALANCED[name])
    return _join(head, listeners, clusters, tail)


def render_k8s() -> str:
    text = render.render(K8S_CONFIG).replace(str(render.DESCRIPTOR), str(IMAGE_ROOT / "build" / "teeprover.pb"))
    header = "# GENERATED by `make k8s-config` (python -m services.gateway.k8s); do not edit.\n"
    return header + balance(text, {name: [hp] for name, hp in UPSTREAMS.items()}, dns=True)


def render_balanced(cfg: GatewayConfig, endpoints: dict[str, list[tuple[str, int]]]) -> str:
    """The Kubernetes policy over static endpoints (the scale-out test runs it on loopback)."""
    return balance(render.render(cfg), endpoints, dns=False)


def main() -> int:
    OUTPUT.write_text(render_k8s())
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
