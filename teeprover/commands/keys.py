"""``teeprover keys new``: a fresh 256-bit API key and the hash line to store server-side."""

from __future__ import annotations

import argparse
from typing import Any

from teeprover.apikeys import hash_key, new_key


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="API keys")
    ksub = p.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    new = ksub.add_parser("new", help="print a fresh key (give it to the client) and its SHA-256 line "
                                      "(append it to TEEPROVER_API_KEYS_FILE)")
    new.set_defaults(func=_new)


def _new(args: argparse.Namespace) -> int:
    key = new_key()
    print(f"key:  {key}")
    print(f"hash: {hash_key(key)}")
    return 0
