"""Helpers shared by the command modules: reading inputs and reporting errors with the right exit code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from teeprover.errors import InvalidInput, TeeProverError

EXIT_OK, EXIT_INVALID, EXIT_MALFORMED = 0, 1, 2


def read_input(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror}") from None


def fail(exc: TeeProverError) -> int:
    print(f"teeprover: {type(exc).__name__}: {exc.message}", file=sys.stderr)
    if exc.details:
        print(f"  details: {exc.details}", file=sys.stderr)
    return EXIT_MALFORMED if isinstance(exc, InvalidInput) else EXIT_INVALID


def cache_dir(override: Path | None = None) -> Path:
    """``override``, else the cache directory the services use (TEEPROVER_CACHE_DIR, default ~/.cache/midnight)."""
    if override is not None:
        return override
    return Path(os.environ.get("TEEPROVER_CACHE_DIR") or Path.home() / ".cache" / "midnight")
