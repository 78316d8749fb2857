"""The gateway and the prover agree, RPC by RPC, on which routes need an API key (services/common/routes.py).

The gateway's side is read from the rendered Envoy configuration (a protected route inherits the virtual
host's shared per-IP bucket, every other route has a limiter of its own or none); the prover's side is its
real authentication check called without a key, with a wrong one and with a right one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from services.common import routes
from services.common.config import GatewayConfig, ProverConfig
from services.gateway import render
from services.prover.server import make_auth_check
from teeprover import apikeys
from teeprover.errors import Unauthenticated
from teeprover.v1 import attestor_pb2, params_pb2, prover_pb2

KEY = apikeys.new_key()


class Context:
    """What the check reads from a gRPC ServicerContext: the metadata and the peer."""

    def __init__(self, key: str | None) -> None:
        self.metadata = (("x-api-key", key),) if key is not None else ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:1"


def every_rpc() -> Iterator[tuple[str, str]]:
    """("Prover.Check", "/teeprover.v1.Prover/Check") for every method of every service in the protos."""
    for module in (prover_pb2, attestor_pb2, params_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                yield f"{service.name}.{method.name}", f"/{service.full_name}/{method.name}"


def gateway_protected() -> dict[str, bool]:
    """RPC → whether all of its routes take the shared per-IP bucket of protected routes."""
    text = render.render(GatewayConfig())
    listeners: list[dict[str, Any]] = json.loads(text.split("listeners: ", 1)[1].split("\n", 1)[0])
    hcm = listeners[0]["filter_chains"][0]["filters"][0]["typed_config"]
    out: dict[str, bool] = {}
    for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
        rpc = route["name"].split(":", 1)[0]
        if "." not in rpc:
            continue  # the gateway's own routes (not-found, method-not-allowed:PATH, draining)
        shared = "envoy.filters.http.local_ratelimit" not in route.get("typed_per_filter_config", {})
        out[rpc] = out.get(rpc, True) and shared
    return out


def prover_protected(full_method: str) -> bool:
    check = make_auth_check(ProverConfig(api_keys=(KEY,)))
    assert check is not None
    check(full_method, Context(KEY))  # the right key always passes
    try:
        check(full_method, Context(None))
    except Unauthenticated:
        with pytest.raises(Unauthenticated):
            check(full_method, Context(apikeys.new_key()))
        return True
    return False


def test_the_gateway_and_the_prover_agree_on_every_rpc() -> None:
    gateway = gateway_protected()
    rpcs = dict(every_rpc())
    assert set(gateway) <= set(rpcs)  # every route is an RPC of the protos
    for rpc, full_method in rpcs.items():
        expected = rpc in routes.PROTECTED_RPCS
        assert prover_protected(full_method) is expected, rpc
        if rpc in gateway:
            assert gateway[rpc] is expected, rpc


def test_every_protected_rpc_exists_and_has_a_rest_route() -> None:
    rpcs = dict(every_rpc())
    assert routes.PROTECTED_RPCS and routes.PROTECTED_RPCS <= set(rpcs)
    assert routes.PROTECTED_RPCS <= set(gateway_protected())
    assert {routes.grpc_method(rpc) for rpc in routes.PROTECTED_RPCS} == routes.PROTECTED_METHODS
    assert routes.PROTECTED_METHODS <= set(rpcs.values())
