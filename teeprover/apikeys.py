"""API keys: generated with 256 bits, stored only as SHA-256 hashes, compared in constant time.

Several keys may be valid at once (rotation with overlap).  Keys never appear
in logs or errors; a refused key is described by nothing but the fact.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import string
from collections.abc import Iterable
from pathlib import Path

from teeprover.errors import InvalidInput, Unauthenticated

MIN_BITS = 256
_HEX = set(string.hexdigits)
_B64URL = set(string.ascii_letters + string.digits + "-_")
KEY_PREFIX = "tpk_"


def new_key() -> str:
    """A fresh key: ``tpk_`` + 32 random bytes in URL-safe base64 (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_bits(key: str) -> float:
    """Upper bound of the key's entropy from its alphabet and length (prefix excluded)."""
    body = key[len(KEY_PREFIX):] if key.startswith(KEY_PREFIX) else key
    if not body:
        return 0.0
    chars = set(body)
    if chars <= _HEX:
        per_char = 4.0
    elif chars <= _B64URL:
        per_char = 6.0
    else:
        per_char = math.log2(94)
    return per_char * len(body)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The accepted key hashes; ``check`` raises :class:`Unauthenticated` unless one matches."""

    def __init__(self, hashes: Iterable[str]) -> None:
        self._hashes = tuple(bytes.fromhex(h) for h in hashes)
        if not self._hashes:
            raise InvalidInput("no API keys configured")

    @classmethod
    def from_sources(cls, raw_keys: Iterable[str] = (), hash_file: Path | None = None) -> KeyRing:
        hashes: list[str] = []
        for i, key in enumerate(raw_keys):
            if key_bits(key) < MIN_BITS:
                raise InvalidInput(
                    f"API key #{i + 1} is too short: keys need at least {MIN_BITS} bits "
                    "(use `teeprover keys new`)"
                )
            hashes.append(hash_key(key))
        if hash_file is not None:
            for lineno, line in enumerate(hash_file.read_text().splitlines(), 1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                if len(text) != 64 or not set(text) <= _HEX:
                    raise InvalidInput(f"{hash_file}:{lineno}: expected a SHA-256 hex digest")
                hashes.append(text.lower())
        return cls(hashes)

    def __len__(self) -> int:
        return len(self._hashes)

    def check(self, presented: str | None) -> None:
        if not presented:
            raise Unauthenticated("missing API key (send it in the X-API-Key header)")
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        # Compare against every stored hash (no early exit) so timing says nothing about which matched.
        matched = False
        for stored in self._hashes:
            matched |= hmac.compare_digest(digest, stored)
        if not matched:
            raise Unauthenticated("invalid API key")
