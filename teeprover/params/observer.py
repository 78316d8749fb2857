"""Hooks through which the parameter store reports what it does (metrics live elsewhere).

The store calls these synchronously, from whichever thread did the work; an
implementation must be thread-safe and fast. ``services/params/metrics.py``
connects them to prometheus-client; tests record them.
"""

from __future__ import annotations

from typing import Protocol


class ParamsObserver(Protocol):
    def cache_hit(self, k: int) -> None:
        """``ensure(k)`` answered from the cache (possibly after re-hashing a changed file)."""

    def cache_miss(self, k: int) -> None:
        """``ensure(k)`` has to download (counted once per download, not per waiting caller)."""

    def bytes_fetched(self, k: int, n: int) -> None:
        """``n`` more bytes arrived from a mirror."""

    def fetch_finished(self, k: int, seconds: float, ok: bool) -> None:
        """A download ended, successfully or with every mirror failing."""

    def verification_failed(self, k: int, reason: str) -> None:
        """A file did not match the manifest. ``reason``: ``mirror``, ``changed_on_disk`` or ``local_file``."""

    def evicted(self, k: int, size: int) -> None:
        """A cached file was removed to stay within the disk budget."""


class NullObserver:
    def cache_hit(self, k: int) -> None:
        pass

    def cache_miss(self, k: int) -> None:
        pass

    def bytes_fetched(self, k: int, n: int) -> None:
        pass

    def fetch_finished(self, k: int, seconds: float, ok: bool) -> None:
        pass

    def verification_failed(self, k: int, reason: str) -> None:
        pass

    def evicted(self, k: int, size: int) -> None:
        pass
