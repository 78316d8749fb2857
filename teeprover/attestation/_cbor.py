"""Strict CBOR decoding for untrusted input: whole buffer consumed, failures become StepFailed."""

from __future__ import annotations

import io
from typing import Any

import cbor2

from .result import StepFailed


def loads_strict(data: bytes, what: str) -> Any:
    try:
        fp = io.BytesIO(data)
        value = cbor2.CBORDecoder(fp).decode()
        if fp.tell() != len(data):
            raise ValueError(f"{len(data) - fp.tell()} trailing bytes")
    except Exception as exc:  # noqa: BLE001 - every decode failure is a parse failure
        raise StepFailed("parse", f"{what} is not valid CBOR: {type(exc).__name__}: {exc}"[:300]) from None
    return value
