"""The attestor's core: nonce rules, the 5-second budget, and the response document.  No gRPC here."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import string
from collections.abc import Callable
from typing import Any

from teeprover.errors import InvalidInput

log = logging.getLogger(__name__)

MAX_NONCE_BYTES = 64
BUDGET_SECONDS = 5.0

Collect = Callable[[bytes | None, dt.datetime], dict[str, Any]]


def parse_nonce(text: str) -> bytes | None:
    """``""`` → no nonce; otherwise hex of at most 64 bytes, else :class:`InvalidInput`."""
    if text == "":
        return None
    if len(text) > 2 * MAX_NONCE_BYTES:
        raise InvalidInput(f"nonce is longer than {MAX_NONCE_BYTES} bytes", details={"max_bytes": MAX_NONCE_BYTES})
    bad = next((c for c in text if c not in string.hexdigits), None)
    if bad is not None:
        raise InvalidInput(f"nonce must be hex digits (0-9, a-f); {bad!r} is not one",
                           details={"max_bytes": MAX_NONCE_BYTES})
    if len(text) % 2:
        raise InvalidInput(f"nonce has an odd number of hex digits ({len(text)}); a byte is two",
                           details={"max_bytes": MAX_NONCE_BYTES})
    return bytes.fromhex(text)


class AttestorCore:
    def __init__(self, collect: Collect, platform: str) -> None:
        self._collect = collect
        self.platform = platform
        # Device calls can hang (a wedged driver); they run beside the RPC thread under a budget.
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="evidence")

    def attestation(self, nonce_hex: str) -> dict[str, Any]:
        nonce = parse_nonce(nonce_hex)
        future = self._executor.submit(self._collect, nonce, dt.datetime.now(dt.UTC))
        try:
            return future.result(timeout=BUDGET_SECONDS)
        except concurrent.futures.TimeoutError:
            log.error("evidence collection exceeded its budget", extra={"platform": self.platform})
            return self._failed(nonce, f"evidence collection exceeded {BUDGET_SECONDS:g} s")
        except InvalidInput:
            raise
        except Exception as exc:  # noqa: BLE001 - a device failure is reported in the document, not as a 500
            log.exception("evidence collection failed", extra={"platform": self.platform})
            return self._failed(nonce, f"evidence collection failed: {type(exc).__name__}")

    def warm_up(self) -> concurrent.futures.Future[Any]:
        """Collect one document in the background at start, so the first request does not pay for what
        providers fetch once and cache (TDX collateral from the PCCS, Azure's VCEK chain)."""

        def run() -> None:
            try:
                document = self._collect(None, dt.datetime.now(dt.UTC))
            except Exception:  # noqa: BLE001 - reported, never raised: requests will say it again
                log.exception("first evidence collection failed", extra={"platform": self.platform})
                return
            if document.get("error"):
                log.warning("first evidence collection failed", extra={"platform": self.platform,
                                                                        "error": document["error"]})

        return self._executor.submit(run)

    def _failed(self, nonce: bytes | None, message: str) -> dict[str, Any]:
        return {"platform": self.platform, "format": "", "nonce": nonce.hex() if nonce else "",
                "attestation": "", "metadata": {}, "error": message}

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
