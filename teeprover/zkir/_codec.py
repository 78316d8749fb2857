"""Strict decoding helpers shared by the ZKIR and preimage codecs.

Everything here turns hostile bytes into plain Python values or raises
:class:`~teeprover.errors.MalformedEncoding` (or
:class:`~teeprover.errors.PayloadTooLarge` for inputs over a byte limit) —
never another exception type.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import cbor2

from teeprover._json import strict_loads
from teeprover.errors import MalformedEncoding, PayloadTooLarge
from teeprover.r1cs import R

FIELD_BYTES = 32
# Nesting far beyond anything our formats use, far below Python's recursion limit.
_MAX_DEPTH = 16


def check_size(data: bytes, max_bytes: int, what: str) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedEncoding(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{what} is {len(data)} bytes, the limit is {max_bytes}",
                              details={"size": len(data), "limit": max_bytes})


def looks_like_json(data: bytes) -> bool:
    """JSON documents of ours are objects; no CBOR item we accept starts with ``{`` (0x7b)."""
    return bytes(data[:64]).lstrip(b" \t\r\n").startswith(b"{")


def cbor_loads(data: bytes, what: str) -> Any:
    """Decode exactly one definite-length CBOR item with no trailing bytes and no duplicate keys."""
    try:
        fp = io.BytesIO(bytes(data))
        decoder = cbor2.CBORDecoder(fp, max_depth=_MAX_DEPTH, allow_indefinite=False,
                                    allow_duplicate_keys=False)
        value = _thaw(decoder.decode())
        if fp.tell() != len(data):
            raise MalformedEncoding(f"{what}: {len(data) - fp.tell()} trailing bytes after the CBOR item")
    except MalformedEncoding:
        raise
    except (Exception, RecursionError) as exc:  # cbor2 raises many types on garbage; all are malformed input
        raise MalformedEncoding(f"{what}: invalid CBOR ({type(exc).__name__}: {str(exc)[:200]})") from None
    return value


def _thaw(value: Any) -> Any:
    """cbor2 decodes the content of tags as immutable containers (frozendict, tuple); give plain dict/list."""
    if isinstance(value, cbor2.CBORTag):
        return cbor2.CBORTag(value.tag, _thaw(value.value))
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {_thaw_key(k): _thaw(v) for k, v in value.items()}
    return value


def _thaw_key(key: Any) -> Any:
    return key if isinstance(key, (str, int, bytes)) else _FOREIGN_KEY


class _ForeignKey:
    """Stands for a map key of a type none of our formats use (rejected by expect_map)."""

    def __repr__(self) -> str:
        return "<non-string key>"


_FOREIGN_KEY = _ForeignKey()


def cbor_dumps(value: Any) -> bytes:
    """Deterministic encoding (RFC 8949 §4.2.1) for everything we hash or sign."""
    return cbor2.dumps(value, canonical=True)


def json_loads(data: bytes, what: str) -> Any:
    return strict_loads(data, what)


def json_dumps(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=False).encode("utf-8")


# ---------------------------------------------------------------- field elements

def fe_to_bytes(x: int) -> bytes:
    return (x % R).to_bytes(FIELD_BYTES, "little")


def fe_from_bytes(value: Any, what: str) -> int:
    if not isinstance(value, bytes) or len(value) != FIELD_BYTES:
        raise MalformedEncoding(f"{what}: a field element must be a {FIELD_BYTES}-byte string")
    x = int.from_bytes(value, "little")
    if x >= R:
        raise MalformedEncoding(f"{what}: field element is not reduced modulo r")
    return x


def fe_from_json(value: Any, what: str) -> int:
    """A field element in our JSON forms: a decimal string (preferred) or a JSON integer, 0 <= x < r."""
    if isinstance(value, bool):
        raise MalformedEncoding(f"{what}: expected a field element, got a boolean")
    if isinstance(value, int):
        x = value
    elif isinstance(value, str):
        if not value or len(value) > 80 or not value.isascii() or not value.isdigit():
            raise MalformedEncoding(f"{what}: a field element must be a decimal string")
        x = int(value)
    else:
        raise MalformedEncoding(f"{what}: expected a field element (decimal string)")
    if not 0 <= x < R:
        raise MalformedEncoding(f"{what}: field element out of range 0..r-1")
    return x


def expect_map(value: Any, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedEncoding(f"{what}: expected a map/object")
    for key in value:
        if not isinstance(key, str):
            raise MalformedEncoding(f"{what}: keys must be strings")
    missing = [k for k in required if k not in value]
    if missing:
        raise MalformedEncoding(f"{what}: missing field(s) {', '.join(missing)}")
    extra = sorted(k for k in value if k not in required and k not in optional)
    if extra:
        raise MalformedEncoding(f"{what}: unknown field(s) {', '.join(extra[:5])}")
    return value


def expect_list(value: Any, what: str, max_len: int) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedEncoding(f"{what}: expected a list")
    if len(value) > max_len:
        raise PayloadTooLarge(f"{what}: {len(value)} items, the limit is {max_len}")
    return value
