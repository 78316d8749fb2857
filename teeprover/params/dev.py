"""Development parameters: INSECURE powers of tau made locally, registered in the cache's dev manifest.

What ``teeprover params generate K --dev`` does, for every caller: the command line
(teeprover/commands/params.py), the services' first-start set-up and built-in keys
(services/supervisor/devsetup.py, teeprover/builtin_keys.py) and the benchmarks.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_root(cache: Path | None = None) -> Path:
    """``cache``, else the cache directory the services use (TEEPROVER_CACHE_DIR, default ~/.cache/midnight)."""
    from teeprover import clientconfig

    return cache if cache is not None else clientconfig.load().cache_root()


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
    return cache_root(cache) / "params" / "dev-manifest.json"


def have_dev_params(k: int, cache: Path | None = None) -> bool:
    """The development manifest lists parameters of size >= ``k`` (any such file serves)."""
    from teeprover.params.manifest import load_manifest

    path = dev_manifest_path(cache)
    return path.exists() and load_manifest(path).power_at_least(k) is not None


def generate_dev(k: int, cache: Path | None = None) -> Path:
    """Generate INSECURE parameters for 2^k, register them in the dev manifest, return the file."""
    from teeprover.params.manifest import check_k, default_manifest_path, load_manifest, save_manifest
    from teeprover.params.store import ParamStore
    from teeprover.snarkjs.ptau import generate_dev_ptau

    check_k(k)
    manifest_file = dev_manifest_path(cache)
    manifest = load_manifest(manifest_file if manifest_file.exists() else default_manifest_path())
    params_dir = cache_root(cache) / "params"
    params_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=params_dir, prefix=".gen-") as tmp:
        raw = Path(tmp) / "dev.ptau"
        _interruptible(generate_dev_ptau, k, raw)
        with ParamStore(params_dir, manifest) as store:
            entry = store.put_local(k, raw, register_insecure=True,
                                    file_name=f"powersOfTau_bls12381_k{k:02d}.INSECURE-DEV.ptau")
            save_manifest(store.manifest, manifest_file)
            return store.path_of(entry.k)


def _interruptible(fn: Callable[..., None], *args: Any) -> None:
    """Run ``fn`` in a worker thread so that Ctrl-C reaches the main thread at once.

    The native fixed-base multiplications run for seconds inside one C call
    (without the GIL), and Python delivers a signal only between bytecodes of the
    main thread: called directly, Ctrl-C would wait for the whole call.  On
    KeyboardInterrupt the caller unwinds (its temporary directory is removed) and
    the abandoned daemon thread ends with the process.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="dev-params", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if failure:
        raise failure[0]
