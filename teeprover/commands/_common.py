"""Helpers shared by the command modules: reading inputs and reporting errors with the right exit code.

Exit codes of every command (README, "Command line"):

    0    success (a proof verified, a command did its work)
    1    invalid: a proof or an attestation that does not verify, a check that fails
    2    a user's mistake: bad input or usage, keys or parameters that are not there, a request the server
         refused (4xx)
    3    the server (or a parameter mirror) could not be reached, cut the connection, or failed (5xx):
         retrying may help
    130  interrupted (Ctrl-C)

Every failure is one line on stderr, ``teeprover: …``; never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from teeprover.errors import InvalidInput, NotFound, TeeProverError, Unavailable

EXIT_OK, EXIT_INVALID, EXIT_MALFORMED, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def read_input(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {what} {path}: {exc.strerror}") from None


def fail(exc: TeeProverError) -> int:
    """Print ``exc`` as one line; return its exit code."""
    from teeprover.client import ConnectionFailed, RemoteError

    if isinstance(exc, RemoteError):
        print(f"teeprover: the server answered {exc.message}", file=sys.stderr)
        return EXIT_MALFORMED if exc.status < 500 else EXIT_UNAVAILABLE
    if isinstance(exc, ConnectionFailed):
        print(f"teeprover: {exc.message}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    # Short details (an instruction index, a k) help; a long record would bury the one line.
    text = json.dumps(exc.details, default=str) if exc.details else ""
    details = f" ({text})" if text and len(text) <= 160 else ""
    print(f"teeprover: {type(exc).__name__}: {exc.message}{details}", file=sys.stderr)
    if isinstance(exc, (InvalidInput, NotFound)):  # e.g. --keys DIR without keys: the user's mistake, like a 404
        return EXIT_MALFORMED
    # Unavailable: a parameter mirror or another service did not answer; retrying may help.
    return EXIT_UNAVAILABLE if isinstance(exc, Unavailable) else EXIT_INVALID


def interrupted() -> int:
    print("teeprover: interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def os_failure(exc: OSError) -> int:
    """A file the user named that cannot be read or written (a network OSError is ConnectionFailed)."""
    where = f" {exc.filename}" if exc.filename else ""
    print(f"teeprover: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
    return EXIT_MALFORMED


def cache_dir(override: Path | None = None) -> Path:
    """``override``, else the cache directory the services use (TEEPROVER_CACHE_DIR, default ~/.cache/midnight)."""
    from teeprover import clientconfig

    if override is not None:
        return override
    return clientconfig.load().cache_root()
