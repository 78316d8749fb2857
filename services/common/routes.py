"""Which RPCs need an API key: the one list the gateway and the prover both read.

The gateway (services/gateway/render.py) puts these routes under the shared per-IP rate limit; the
prover (services/prover/server.py) refuses them without a valid ``x-api-key``.  A test checks that the
two agree on every RPC of every service (tests/unit/test_protected_routes.py).
"""

from __future__ import annotations

PACKAGE = "teeprover.v1"

# "Service.Method", as the gateway's policy table names RPCs.
PROTECTED_RPCS = frozenset({"Prover.Check", "Prover.Prove", "Prover.ProveTx", "Prover.K"})


def grpc_method(rpc: str) -> str:
    """``Prover.Check`` → ``/teeprover.v1.Prover/Check`` (gRPC's full method name)."""
    service, method = rpc.split(".")
    return f"/{PACKAGE}.{service}/{method}"


PROTECTED_METHODS = frozenset(grpc_method(rpc) for rpc in PROTECTED_RPCS)
