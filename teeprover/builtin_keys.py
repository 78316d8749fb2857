"""Built-in keys under Midnight's key locations: a wallet sends only the preimage.

Midnight's proof server knows four circuits by name (``midnight/zswap/spend``,
``midnight/zswap/output``, ``midnight/zswap/sign``, ``midnight/dust/spend``).
Their ZKIR ships with this package (``teeprover/circuits/midnight/``, pinned
by SHA-256 below); their keys are set up once per key directory from the
cached parameters, by :func:`setup_builtin` (``teeprover setup --builtin``, or
the prover in the background after start).  A key directory counts as ready
when its ``key.json`` records the digest of the packaged circuit, so a changed
circuit is set up again rather than served with stale keys.

Set-up is single-flight across processes: a file lock in the key root makes a
second caller wait and then find the keys ready.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from teeprover.errors import Cancelled, InvalidInput

log = logging.getLogger("teeprover.builtin_keys")


@dataclass(frozen=True)
class Builtin:
    location: str
    resource: str  # path under teeprover/circuits/
    sha256: str  # of the packaged .zkir file, as midnight-ledger records it beside the file


BUILTINS: dict[str, Builtin] = {b.location: b for b in (
    Builtin("midnight/zswap/sign", "midnight/zswap/sign.zkir",
            "57de67b88815ef8351f8da756f1bb26d36ebe4a832d83ce02ccdc8511ea8fc87"),
    Builtin("midnight/dust/spend", "midnight/dust/spend.zkir",
            "9274ac7708818a9a6d9e2f9caab54f9c9d639ef83166d1d200a378eaa2213115"),
    Builtin("midnight/zswap/output", "midnight/zswap/output.zkir",
            "80ef20de750f317c2d827f255df490b354ff6306349bb0d8063509b51ed8e6af"),
    Builtin("midnight/zswap/spend", "midnight/zswap/spend.zkir",
            "f6f8b64ea0380cb72a53902253e93316145c86579696d7c9982fd18c9ed61a15"),
)}
LOCK_FILE = ".builtin-setup.lock"


def parse_selection(text: str) -> tuple[str, ...]:
    """``all``, ``none`` / empty, or a comma-separated list of built-in key locations (in set-up order)."""
    text = text.strip()
    if text in ("", "none"):
        return ()
    if text == "all":
        return tuple(BUILTINS)
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [c for c in chosen if c not in BUILTINS]
    if unknown:
        raise InvalidInput(f"unknown built-in key(s) {', '.join(unknown)}; known: {', '.join(BUILTINS)}",
                           details={"known": list(BUILTINS)})
    return tuple(b for b in BUILTINS if b in chosen)


def circuit_bytes(location: str) -> bytes:
    """The packaged ZKIR of a built-in, checked against its pinned SHA-256."""
    builtin = BUILTINS[location]
    data = (resources.files("teeprover.circuits") / builtin.resource).read_bytes()
    if hashlib.sha256(data).hexdigest() != builtin.sha256:  # pragma: no cover - a damaged installation
        raise RuntimeError(f"packaged circuit for {location} does not match its pinned SHA-256")
    return data


def circuit_digest(location: str) -> str:
    """Our content digest of the built-in circuit (what ``key.json`` records as ``circuit_sha256``)."""
    from teeprover import zkir

    return zkir.load_circuit(circuit_bytes(location)).digest().hex()


def is_ready(keys_root: Path, location: str, digest: str | None = None) -> bool:
    """Keys for ``location`` exist under ``keys_root`` and were made for the packaged circuit."""
    from teeprover.keystore import made_for

    return made_for(keys_root / location, digest or circuit_digest(location))


def setup_builtin(keys_root: Path, locations: Iterable[str], *, cache: Path | None = None, dev_params: bool = False,
                  should_stop: Callable[[], bool] = lambda: False,
                  on_state: Callable[[str, str], None] = lambda location, state: None) -> list[str]:
    """Set up the keys of ``locations`` that are not ready; return the locations set up by this call.

    With ``dev_params`` missing parameters are generated as INSECURE development
    parameters (the embedded default of ``serve all``); otherwise they come from
    the parameter manifest (fetched and verified if not cached).  ``on_state`` is
    told ``setting_up`` / ``ready`` per location.
    """
    from teeprover.keysetup import ensure_keys

    wanted = [loc for loc in locations if loc in BUILTINS]
    keys_root.mkdir(parents=True, exist_ok=True)
    done: list[str] = []
    with open(keys_root / LOCK_FILE, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # single flight: a second process waits, then finds the keys ready
        for location in wanted:
            if should_stop():
                raise Cancelled("built-in key set-up stopped")
            if is_ready(keys_root, location):
                on_state(location, "ready")
                continue
            on_state(location, "setting_up")
            log.info("setting up built-in key", extra={"key_location": location})
            if ensure_keys(circuit_bytes(location), keys_root / location, cache=cache, dev_params=dev_params):
                done.append(location)
            on_state(location, "ready")
    return done
