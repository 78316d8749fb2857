"""Circuit keys on disk: ``<root>/<key_location>/{circuit.zkir,pk.cbor,vk.cbor,verification_key.json,key.json}``.

``teeprover setup`` writes a key directory; the prover looks keys up by the
preimage's ``key_location`` (e.g. ``builtin/demo/range``).  ``key.json``
records the SHA-256 of each file as written by our own setup, so a key read
back with a matching hash is *trusted* and may skip the costly subgroup checks
(see :func:`teeprover.groth16.encoding.decode_proving_key`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from teeprover.errors import InvalidInput, NotFound, Unavailable

_LOCATION = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,7}$")
FILES = ("circuit.zkir", "pk.cbor", "vk.cbor")


@dataclass(frozen=True)
class KeyFiles:
    location: str
    circuit: bytes
    prover_key: bytes
    verifier_key: bytes
    trusted: bool  # the files match the hashes our own setup recorded

    @property
    def prover_key_sha256(self) -> str:
        return hashlib.sha256(self.prover_key).hexdigest()


def check_location(location: str) -> str:
    if not _LOCATION.match(location) or any(part in {".", ".."} for part in location.split("/")):
        raise InvalidInput(
            "key_location must be path-like words (letters, digits, '_', '-', '.') separated by '/'",
            details={"key_location": location[:200]},
        )
    return location


def write_key_dir(directory: Path, *, circuit: bytes, prover_key: bytes, verifier_key: bytes,
                  verification_key_json: str, meta: dict[str, object]) -> None:
    """Write a key directory atomically per file, with ``key.json`` last (its presence marks completeness).

    A write that fails (a full disk, a read-only cache) raises :class:`Unavailable` and leaves no
    temporary file behind; a directory that had no keys before is left without any of the new files.
    """
    created = not directory.exists()
    fresh = not (directory / "key.json").exists()
    written: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        hashes = {}
        for name, data in (("circuit.zkir", circuit), ("pk.cbor", prover_key), ("vk.cbor", verifier_key),
                           ("verification_key.json", verification_key_json.encode())):
            _write_replace(directory / name, data)
            written.append(directory / name)
            hashes[name] = hashlib.sha256(data).hexdigest()
        record = {**meta, "sha256": hashes}
        _write_replace(directory / "key.json", (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    except OSError as exc:
        for path in written if fresh else []:
            path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise Unavailable(f"cannot write keys to {directory.name}: {exc.strerror or exc}",
                          details={"directory": str(directory)}) from None


def _write_replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read(directory: Path, location: str, names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, bytes]]:
    """The SHA-256 table ``key.json`` records and the files ``names`` of a complete key directory."""
    try:
        record = json.loads((directory / "key.json").read_text())
        data = {name: (directory / name).read_bytes() for name in names}
    except FileNotFoundError:
        raise NotFound(f"no keys for key_location {location!r}", details={"key_location": location}) from None
    except (OSError, ValueError) as exc:
        raise NotFound(f"keys for {location!r} are unreadable: {type(exc).__name__}",
                       details={"key_location": location}) from None
    recorded = record.get("sha256", {}) if isinstance(record, dict) else {}
    return (recorded if isinstance(recorded, dict) else {}), data


def read_key_dir(directory: Path, location: str = "") -> KeyFiles:
    recorded, data = _read(directory, location, FILES)
    trusted = all(recorded.get(name) == hashlib.sha256(blob).hexdigest() for name, blob in data.items())
    return KeyFiles(location, data["circuit.zkir"], data["pk.cbor"], data["vk.cbor"], trusted)


def made_for(directory: Path, circuit_digest: str) -> bool:
    """``directory`` holds complete keys (``key.json`` present) made for the circuit with ``circuit_digest``."""
    try:
        record = json.loads((directory / "key.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("circuit_sha256") == circuit_digest


class KeyStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, location: str) -> Path:
        return self.root / check_location(location)

    def get(self, location: str) -> KeyFiles:
        return read_key_dir(self.path(location), location)

    def verifying_key(self, location: str, *, snarkjs_json: bool = False) -> bytes:
        """``vk.cbor`` (or snarkjs ``verification_key.json``) of ``location``, without reading the proving key.

        Served only from a complete key directory (``key.json`` present) and only when the file matches
        the hash our setup recorded there; otherwise :class:`NotFound`.
        """
        name = "verification_key.json" if snarkjs_json else "vk.cbor"
        recorded, files = _read(self.path(location), location, (name,))
        data = files[name]
        if recorded.get(name) != hashlib.sha256(data).hexdigest():
            raise NotFound(f"the verifying key of {location!r} does not match its key.json",
                           details={"key_location": location})
        return data

    def locations(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(str(p.parent.relative_to(self.root)) for p in self.root.rglob("key.json"))
