"""Thin gRPC handlers of teeprover.v1.Attestor."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import struct_pb2

from services.attestor.core import AttestorCore
from teeprover.v1 import attestor_pb2, attestor_pb2_grpc


class AttestorServicer(attestor_pb2_grpc.AttestorServicer):
    def __init__(self, core: AttestorCore) -> None:
        self.core = core

    def GetAttestation(self, request: Any, context: grpc.ServicerContext) -> attestor_pb2.AttestationResponse:
        doc = self.core.attestation(request.nonce)
        metadata = struct_pb2.Struct()
        metadata.update(doc.get("metadata") or {})
        error = struct_pb2.Value()
        if doc.get("error"):
            error.string_value = str(doc["error"])
        else:
            error.null_value = struct_pb2.NULL_VALUE
        return attestor_pb2.AttestationResponse(
            platform=doc["platform"], format=doc.get("format") or "", nonce=doc.get("nonce") or "",
            attestation=doc.get("attestation") or "", metadata=metadata, error=error,
        )
