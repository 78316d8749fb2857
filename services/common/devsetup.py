"""First start of the embedded default (``teeprover serve all``): development parameters and demo keys.

Runs once per cache directory and is skipped when an operator configured a
parameter manifest of their own.  Development parameters are INSECURE (their
tau was random and thrown away, but nobody can check that) and are marked so
in the file name and the manifest.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

log = logging.getLogger("teeprover.devsetup")

DEMO_CIRCUITS = {"builtin/demo/arithmetic": "arithmetic.zkir.json", "builtin/demo/range": "range.zkir.json"}


def prepare(cache_dir: Path, max_k: int) -> Path:
    """Make sure dev parameters for k = 10..max_k and the demo circuits' keys exist; return the manifest path."""
    from teeprover.commands.circuits import setup_keys
    from teeprover.commands.params import dev_manifest_path, generate_dev
    from teeprover.params.manifest import load_manifest

    manifest_file = dev_manifest_path(cache_dir)
    have = set()
    if manifest_file.exists():
        have = {k for k in range(10, 25) if _has(load_manifest(manifest_file), k)}
    for k in range(10, max_k + 1):
        if k not in have:
            log.info("generating INSECURE development parameters", extra={"k": k})
            generate_dev(k, cache_dir)
    keys_root = cache_dir / "keys"
    for location, file_name in DEMO_CIRCUITS.items():
        target = keys_root / location
        if (target / "key.json").exists():
            continue
        circuit = (resources.files("teeprover.circuits") / "demo" / file_name).read_bytes()
        log.info("setting up demo circuit keys", extra={"key_location": location})
        setup_keys(circuit, target, cache=cache_dir)
    return manifest_file


def _has(manifest: object, k: int) -> bool:
    try:
        manifest.entry(k)  # type: ignore[attr-defined]
        return True
    except Exception:  # noqa: BLE001 - NotFound / InvalidInput
        return False
