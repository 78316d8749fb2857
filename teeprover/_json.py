"""Strict JSON for outside input: duplicate keys, NaN/Infinity and deep nesting are malformed, not tolerated."""

from __future__ import annotations

import json
from typing import Any

from teeprover.errors import MalformedEncoding


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def strict_loads(data: bytes | str, what: str) -> Any:
    """Parse ``data`` or raise :class:`MalformedEncoding` naming ``what`` (never another exception)."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - every parse failure is malformed input
        raise MalformedEncoding(f"{what}: invalid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
