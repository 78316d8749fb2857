"""``teeprover params fetch K`` and ``teeprover params generate K --dev``."""

from __future__ import annotations

import argparse
import tempfile
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


def manifest_path(explicit: Path | None = None, cache: Path | None = None) -> Path:
    from teeprover import clientconfig
    from teeprover.params.manifest import default_manifest_path

    if explicit is not None:
        return explicit
    configured = clientconfig.load().params_manifest
    if configured is not None:
        return configured
    dev = dev_manifest_path(cache)
    return dev if dev.exists() else default_manifest_path()


def dev_manifest_path(cache: Path | None = None) -> Path:
    return cache_dir(cache) / "params" / "dev-manifest.json"


def _fetch(args: argparse.Namespace) -> int:
    from teeprover.params.manifest import load_manifest
    from teeprover.params.progress import fetch_with_progress
    from teeprover.params.store import ParamStore

    try:
        with ParamStore(cache_dir() / "params", load_manifest(manifest_path(args.manifest))) as store:
            path = fetch_with_progress(store, args.k)
    except TeeProverError as exc:
        return fail(exc)
    print(f"verified: {path}")
    return EXIT_OK


def generate_dev(k: int, cache: Path | None = None) -> Path:
    """Generate INSECURE parameters for 2^k, register them in the dev manifest, return the file."""
    from teeprover.params.manifest import check_k, default_manifest_path, load_manifest, save_manifest
    from teeprover.params.store import ParamStore
    from teeprover.snarkjs.ptau import generate_dev_ptau

    check_k(k)
    manifest_file = dev_manifest_path(cache)
    manifest = load_manifest(manifest_file if manifest_file.exists() else default_manifest_path())
    params_dir = cache_dir(cache) / "params"
    params_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=params_dir, prefix=".gen-") as tmp:
        raw = Path(tmp) / "dev.ptau"
        generate_dev_ptau(k, raw)
        with ParamStore(params_dir, manifest) as store:
            entry = store.put_local(k, raw, register_insecure=True,
                                    file_name=f"powersOfTau_bls12381_k{k:02d}.INSECURE-DEV.ptau")
            save_manifest(store.manifest, manifest_file)
            return store.path_of(entry.k)


def _generate(args: argparse.Namespace) -> int:
    from teeprover.commands._progress import Progress

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
