"""First start of the embedded default (``teeprover serve all``): development parameters and demo keys.

Runs once per cache directory and is skipped when an operator configured a
parameter manifest of their own.  Development parameters are INSECURE (their
tau was random and thrown away, but nobody can check that) and are marked so
in the file name and the manifest.

``python -m services.supervisor.devsetup CACHE_DIR MAX_K LOG_LEVEL`` runs :func:`prepare` as the
supervisor's first child, so that Ctrl-C can end it at once: SIGTERM raises
``KeyboardInterrupt`` here, which removes the half-made files on its way out.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger("teeprover.devsetup")


def manifest_path(cache_dir: Path) -> Path:
    from teeprover.params.dev import dev_manifest_path

    return dev_manifest_path(cache_dir)


def prepare(cache_dir: Path, max_k: int) -> Path:
    """Make sure dev parameters for k = 10..max_k and the demo circuits' keys exist; return the manifest path.

    ``max_k`` must reach the demo circuits' largest k (``teeprover.circuits.demo_params_k``; the config refuses
    less), else setting up that circuit's keys fails for want of parameters.
    """
    from teeprover.circuits import DEMO_CIRCUITS, demo_circuit
    from teeprover.keysetup import setup_keys
    from teeprover.params.dev import dev_manifest_path, generate_dev
    from teeprover.params.manifest import load_manifest

    manifest_file = dev_manifest_path(cache_dir)
    have = set()
    if manifest_file.exists():
        have = set(load_manifest(manifest_file).entries)
    for k in range(10, max_k + 1):
        if k not in have:
            log.info("generating INSECURE development parameters", extra={"k": k})
            generate_dev(k, cache_dir)
    keys_root = cache_dir / "keys"
    for location in DEMO_CIRCUITS:
        target = keys_root / location
        if (target / "key.json").exists():
            continue
        circuit = demo_circuit(location)
        log.info("setting up demo circuit keys", extra={"key_location": location})
        setup_keys(circuit, target, cache=cache_dir)
    return manifest_file


def main(argv: list[str]) -> int:
    from services.common import logs

    def _stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    logs.setup("supervisor", argv[2])
    try:
        prepare(Path(argv[0]), int(argv[1]))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
