"""The attestor's core without gRPC: nonce rules, the 5 s budget, failures in the document, warm-up."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import pytest

from services.attestor import core as core_mod
from services.attestor.core import AttestorCore, parse_nonce
from teeprover.errors import InvalidInput


def _doc(nonce: bytes | None, now: dt.datetime) -> dict[str, Any]:
    return {"platform": "simulated", "format": "f", "nonce": nonce.hex() if nonce else None,
            "attestation": "AA==", "metadata": {"t": now.isoformat()}, "error": None}


@pytest.mark.parametrize(("text", "expected"), [("", None), ("00ff", b"\x00\xff"), ("AB" * 64, b"\xab" * 64)])
def test_nonce_rules_accept(text: str, expected: bytes | None) -> None:
    assert parse_nonce(text) == expected


@pytest.mark.parametrize("text", ["0", "zz", "ab" * 65, "0x00", "ab cd"])
def test_nonce_rules_refuse(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_nonce(text)


def test_document_passes_through_and_bad_nonce_is_invalid_input() -> None:
    core = AttestorCore(_doc, "simulated")
    try:
        assert core.attestation("0102")["nonce"] == "0102"
        with pytest.raises(InvalidInput):
            core.attestation("xyz")
    finally:
        core.close()


def test_a_failing_or_hanging_device_gives_a_shaped_error_document(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(nonce: bytes | None, now: dt.datetime) -> dict[str, Any]:
        release.wait(5)
        return _doc(nonce, now)

    def boom(nonce: bytes | None, now: dt.datetime) -> dict[str, Any]:
        raise OSError("device gone")

    monkeypatch.setattr(core_mod, "BUDGET_SECONDS", 0.2)
    slow, broken = AttestorCore(hang, "tdx"), AttestorCore(boom, "tdx")
    try:
        doc = slow.attestation("aa")
        assert doc["error"] == "evidence collection exceeded 0.2 s" and doc["nonce"] == "aa"
        assert doc["attestation"] == "" and doc["platform"] == "tdx"
        doc = broken.attestation("")
        assert doc["error"] == "evidence collection failed: OSError"
    finally:
        release.set()
        slow.close()
        broken.close()


def test_warm_up_collects_once_in_the_background_and_logs_failures(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[bytes | None] = []

    def collect(nonce: bytes | None, now: dt.datetime) -> dict[str, Any]:
        calls.append(nonce)
        return {**_doc(nonce, now), "error": "PCCS https://pccs.example did not answer"}

    core = AttestorCore(collect, "tdx")
    try:
        with caplog.at_level(logging.WARNING, logger=core_mod.log.name):
            core.warm_up().result(timeout=5)
        assert calls == [None]
        assert any("first evidence collection failed" in r.message for r in caplog.records)
    finally:
        core.close()
