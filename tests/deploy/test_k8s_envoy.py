"""The multi-pod policy of the Kubernetes Envoy config (services/gateway/k8s.py), read from the file itself.

Its behaviour (a killed replica loses no request) is tested end to end in tests/e2e/test_scale_out.py.
"""

from __future__ import annotations

from typing import Any

from services.gateway import k8s


def _parts() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    _, listeners, clusters, _ = k8s._split(k8s.OUTPUT.read_text())
    return listeners, clusters


def _routes(listeners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for listener in listeners for chain in listener["filter_chains"] for f in chain["filters"]
            for vh in f["typed_config"]["route_config"]["virtual_hosts"] for r in vh["routes"]]


def test_prover_pods_are_balanced_by_least_request_with_local_origin_outlier_ejection() -> None:
    _, clusters = _parts()
    by_name = {c["name"]: c for c in clusters}
    for name, service in k8s.BALANCED.items():
        cluster = by_name[name]
        assert cluster["type"] == "STRICT_DNS" and cluster["lb_policy"] == "LEAST_REQUEST"
        od = cluster["outlier_detection"]
        assert od["split_external_local_origin_errors"] and od["enforcing_consecutive_local_origin_failure"] == 100
        # A busy prover's 503 (queue full) is load, not a fault: 5xx-based ejection is off.
        assert od["enforcing_consecutive_5xx"] == 0 and od["enforcing_consecutive_gateway_failure"] == 0
        assert cluster["health_checks"][0]["grpc_health_check"] == {"service_name": service}
    assert "lb_policy" not in by_name["params"] and "outlier_detection" not in by_name["params"]


def test_only_requests_that_never_ran_are_retried() -> None:
    listeners, _ = _parts()
    routes = _routes(listeners)
    to_prover = [r for r in routes if r.get("route", {}).get("cluster") in k8s.BALANCED]
    assert any(r["name"].startswith("Prover.Prove:") for r in to_prover)
    for r in to_prover:
        policy = r["route"]["retry_policy"]
        assert set(policy["retry_on"].split(",")) == {"connect-failure", "refused-stream", "reset-before-request"}, \
            r["name"]
        assert policy["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"
    for r in routes:
        if r.get("route", {}).get("cluster") == "params":
            assert "retry_policy" not in r["route"]


def test_envoys_own_503_tells_the_client_when_to_come_back() -> None:
    listeners, _ = _parts()
    for listener in listeners:
        mappers = listener["filter_chains"][0]["filters"][0]["typed_config"]["local_reply_config"]["mappers"]
        by_code = {m["filter"]["status_code_filter"]["comparison"]["value"]["default_value"]: m for m in mappers}
        added = {code: [h["header"] for h in m.get("headers_to_add", [])] for code, m in by_code.items()}
        assert {"key": "retry-after", "value": str(k8s.RETRY_AFTER_S)} in added[503]
        assert all(h["key"] != "retry-after" for h in added[504])  # a timed-out proof is not "come back in a second"
        # What render.render puts on every local reply is kept.
        assert added[503][:-1] == added[504]
