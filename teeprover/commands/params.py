"""``teeprover params fetch K`` and ``teeprover params generate K --dev``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from teeprover.commands._common import EXIT_OK, cache_dir, fail
from teeprover.errors import InvalidInput, TeeProverError


def register(sub: Any) -> None:
    p = sub.add_parser("params", help="universal parameters (powers of tau, snarkjs .ptau)")
    psub = p.add_subparsers(dest="params_command", required=True, metavar="ACTION")
    f = psub.add_parser("fetch", help="fetch and verify parameters of size 2^K, with a progress bar")
    f.add_argument("k", type=int)
    f.add_argument("--manifest", type=Path, help="manifest (default: TEEPROVER_PARAMS_MANIFEST or the bundled one)")
    f.set_defaults(func=_fetch)
    g = psub.add_parser("generate", help="make INSECURE development parameters (a random tau, thrown away)")
    g.add_argument("k", type=int)
    g.add_argument("--dev", action="store_true", required=True, help="acknowledge that they are insecure")
    g.set_defaults(func=_generate)


def _fetch(args: argparse.Namespace) -> int:
    from teeprover.commands._fetch_progress import fetch_with_progress
    from teeprover.params.dev import manifest_path
    from teeprover.params.manifest import load_manifest
    from teeprover.params.store import ParamStore

    try:
        with ParamStore(cache_dir() / "params", load_manifest(manifest_path(args.manifest))) as store:
            path = fetch_with_progress(store, args.k)
    except TeeProverError as exc:
        return fail(exc)
    print(f"verified: {path}")
    return EXIT_OK


def _generate(args: argparse.Namespace) -> int:
    from teeprover.params.dev import dev_manifest_path, generate_dev
    from teeprover.progress import Progress

    try:
        with Progress().stage(f"generating INSECURE development parameters for k={args.k}"):
            path = generate_dev(args.k)
    except TeeProverError as exc:
        return fail(exc)
    except ValueError as exc:
        return fail(InvalidInput(str(exc)))
    print(f"INSECURE development parameters for k={args.k}: {path}")
    print(f"registered in {dev_manifest_path()} (marked insecure; never use in production)")
    return EXIT_OK
