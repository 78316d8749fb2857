"""Thin gRPC handlers of teeprover.v1.Prover: decode → core → encode."""

from __future__ import annotations

from typing import Any

import grpc
from google.api import httpbody_pb2

from services.common.deprecations import PROVE_TX_HEADERS
from services.common.logs import request_id_var
from services.prover.core import ProverCore
from teeprover.errors import Unavailable
from teeprover.v1 import prover_pb2, prover_pb2_grpc


class ProverServicer(prover_pb2_grpc.ProverServicer):
    def __init__(self, core: ProverCore) -> None:
        self.core = core

    def Health(self, request: Any, context: grpc.ServicerContext) -> prover_pb2.HealthResponse:
        return prover_pb2.HealthResponse(**self.core.health())

    def Ready(self, request: Any, context: grpc.ServicerContext) -> prover_pb2.ReadyResponse:
        state = self.core.ready()
        if state["status"] != "ready":
            raise _NotReady(state)
        return prover_pb2.ReadyResponse(**state)

    def Version(self, request: Any, context: grpc.ServicerContext) -> prover_pb2.VersionResponse:
        v = self.core.version
        return prover_pb2.VersionResponse(
            name=v.name, version=v.version, git_commit=v.git_commit, build_date=v.build_date,
            python_version=v.python_version, auth_disabled=v.auth_disabled,
        )

    def ProofVersions(self, request: Any, context: grpc.ServicerContext) -> httpbody_pb2.HttpBody:
        return httpbody_pb2.HttpBody(content_type="application/json", data=b'["V1"]')

    def _run(self, kind: str, request: httpbody_pb2.HttpBody, context: grpc.ServicerContext,
             reply_type: str) -> httpbody_pb2.HttpBody:
        data = self.core.run(kind, request.data, request.content_type, request_id_var.get(), context.add_callback)
        return httpbody_pb2.HttpBody(content_type=reply_type, data=data)

    def Check(self, request: httpbody_pb2.HttpBody, context: grpc.ServicerContext) -> httpbody_pb2.HttpBody:
        return self._run("check", request, context, "application/cbor")

    def Prove(self, request: httpbody_pb2.HttpBody, context: grpc.ServicerContext) -> httpbody_pb2.HttpBody:
        return self._run("prove", request, context, "application/cbor")

    def ProveTx(self, request: httpbody_pb2.HttpBody, context: grpc.ServicerContext) -> httpbody_pb2.HttpBody:
        reply = self._run("prove_tx", request, context, "application/cbor")
        # Sent only with a success: initial metadata sent before an error turns the reply from
        # trailers-only into headers + trailers, and the gateway's error filter (which reads the
        # public error body from the response headers) would then pass the raw google.rpc.Status.
        context.send_initial_metadata(PROVE_TX_HEADERS)
        return reply

    def K(self, request: httpbody_pb2.HttpBody, context: grpc.ServicerContext) -> httpbody_pb2.HttpBody:
        return self._run("k", request, context, "text/plain")

    def VerifyingKey(self, request: prover_pb2.VerifyingKeyRequest,
                     context: grpc.ServicerContext) -> httpbody_pb2.HttpBody:
        # Envoy passes the REST request's headers as metadata: Accept picks snarkjs JSON over CBOR.
        accept = next((v for k, v in context.invocation_metadata() if k == "accept"), "")
        as_json = isinstance(accept, str) and "application/json" in accept.lower()
        data = self.core.verifying_key(request.key_location, snarkjs_json=as_json)
        return httpbody_pb2.HttpBody(content_type="application/json" if as_json else "application/cbor", data=data)


class _NotReady(Unavailable):
    """Ready's 503 carries the pool state in the body as well as the error fields."""

    def __init__(self, state: dict[str, Any]) -> None:
        super().__init__("the prover is not ready", details=dict(state))
        self.extra_fields = state
