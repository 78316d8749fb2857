"""The parameter manifest: which file is the universal parameter set for each k.

A manifest is a JSON document (schema version 1)::

    {
      "schema_version": 1,
      "description": "optional free text",
      "mirrors": ["https://example.org/ptau/", "file:///srv/ptau/"],
      "params": [
        {"k": 10, "file": "ppot_0080_10.ptau", "size": 1234,
         "sha256": "<64 lowercase hex>", "insecure": false}
      ]
    }

``mirrors`` are base URLs tried in order; a file's URL is the base joined with
its ``file`` name. Every key is required except ``description``; unknown keys,
wrong types, duplicate ``k`` or file names are refused. Bytes that are not a
JSON object of this shape raise :class:`MalformedEncoding`; well-formed values
that are out of bounds (k outside 10..24, a bad URL scheme, an unsupported
schema version) raise :class:`InvalidInput`.

``insecure`` marks development parameters generated locally (toxic waste
known to whoever made them); callers decide whether to accept them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from teeprover._json import strict_loads
from teeprover.errors import InvalidInput, MalformedEncoding, NotFound
from teeprover.params._fileio import atomic_write_bytes

SCHEMA_VERSION = 1
K_MIN = 10
K_MAX = 24
MIRROR_SCHEMES = ("https", "http", "file")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Plain file names only: no directories, no leading dot (our own temp/state files start with one).
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}")
_TOP_KEYS = {"schema_version", "description", "mirrors", "params"}
_TOP_REQUIRED = {"schema_version", "mirrors", "params"}
_ENTRY_KEYS = {"k", "file", "size", "sha256", "insecure"}
MAX_MANIFEST_BYTES = 1 << 20


@dataclass(frozen=True)
class ParamEntry:
    """One parameter file: what the manifest promises about it."""

    k: int
    file_name: str
    size: int
    sha256: str
    insecure: bool = False

    def __post_init__(self) -> None:
        check_k(self.k)
        if not isinstance(self.file_name, str) or not _FILE_NAME.fullmatch(self.file_name):
            raise InvalidInput(f"k={self.k}: bad file name {self.file_name!r}", details={"k": self.k})
        if self.file_name.endswith(".partial"):
            raise InvalidInput(f"k={self.k}: file name may not end in .partial", details={"k": self.k})
        if type(self.size) is not int or self.size <= 0:
            raise InvalidInput(f"k={self.k}: size must be a positive integer", details={"k": self.k})
        if not isinstance(self.sha256, str) or not _SHA256_HEX.fullmatch(self.sha256):
            raise InvalidInput(f"k={self.k}: sha256 must be 64 lowercase hex digits", details={"k": self.k})
        if type(self.insecure) is not bool:
            raise InvalidInput(f"k={self.k}: insecure must be a boolean", details={"k": self.k})

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "file": self.file_name, "size": self.size, "sha256": self.sha256,
                "insecure": self.insecure}


@dataclass(frozen=True)
class Manifest:
    """A validated manifest. Immutable: :meth:`with_entry` returns a new one."""

    mirrors: tuple[str, ...]
    entries: Mapping[int, ParamEntry]
    schema_version: int = SCHEMA_VERSION
    description: str = ""

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise InvalidInput(f"unsupported manifest schema_version {self.schema_version!r}",
                               details={"supported": SCHEMA_VERSION})
        for url in self.mirrors:
            check_mirror_url(url)
        if len(set(self.mirrors)) != len(self.mirrors):
            raise InvalidInput("duplicate mirror URL in manifest")
        names: set[str] = set()
        for k, entry in self.entries.items():
            if entry.k != k:
                raise InvalidInput(f"manifest entry keyed {k} describes k={entry.k}")
            if entry.file_name in names:
                raise InvalidInput(f"file name {entry.file_name!r} used for two values of k")
            names.add(entry.file_name)
        # Freeze the mapping so a shared Manifest cannot be mutated behind a store's back.
        object.__setattr__(self, "entries", MappingProxyType(dict(sorted(self.entries.items()))))

    def entry(self, k: int) -> ParamEntry:
        """The entry for ``k``; :class:`InvalidInput` outside 10..24, :class:`NotFound` if absent."""
        check_k(k)
        try:
            return self.entries[k]
        except KeyError:
            raise NotFound(f"no parameters for k={k} in the manifest", details={"k": k}) from None

    def power_at_least(self, k: int) -> int | None:
        """The smallest listed power >= ``k`` (its Lagrange sections serve every smaller size), or ``None``."""
        return next((p for p in self.entries if p >= k), None)  # entries are sorted

    def with_entry(self, entry: ParamEntry) -> Manifest:
        entries = dict(self.entries)
        entries[entry.k] = entry
        return Manifest(mirrors=self.mirrors, entries=entries, schema_version=self.schema_version,
                        description=self.description)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": self.schema_version}
        if self.description:
            out["description"] = self.description
        out["mirrors"] = list(self.mirrors)
        out["params"] = [e.to_json() for e in self.entries.values()]
        return out

    def to_bytes(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2) + "\n").encode()


def check_k(k: object) -> int:
    if type(k) is not int or not K_MIN <= k <= K_MAX:
        raise InvalidInput(f"k must be an integer in {K_MIN}..{K_MAX}, not {k!r}", details={"k": str(k)})
    return k


def check_mirror_url(url: object) -> str:
    if not isinstance(url, str):
        raise MalformedEncoding("mirror URLs must be strings")
    parts = urlsplit(url)
    if parts.scheme not in MIRROR_SCHEMES:
        raise InvalidInput(f"mirror {url!r}: scheme must be one of {', '.join(MIRROR_SCHEMES)}",
                           details={"mirror": url})
    if parts.query or parts.fragment:
        raise InvalidInput(f"mirror {url!r}: no query or fragment allowed", details={"mirror": url})
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise InvalidInput(f"mirror {url!r}: file URLs must be file:///absolute/path", details={"mirror": url})
    elif not parts.hostname:
        raise InvalidInput(f"mirror {url!r}: no host", details={"mirror": url})
    return url


def mirror_file_url(base: str, file_name: str) -> str:
    """The URL of ``file_name`` under mirror ``base`` (a base without a trailing slash is a directory)."""
    return base.rstrip("/") + "/" + file_name


def parse_manifest(data: bytes | str) -> Manifest:
    """Decode and validate a manifest; see the module docstring for the schema and errors."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise MalformedEncoding("manifest larger than 1 MiB")
    doc = strict_loads(data, "manifest")
    if not isinstance(doc, dict):
        raise MalformedEncoding("manifest must be a JSON object")
    _check_keys(doc, _TOP_KEYS, _TOP_REQUIRED, "manifest")
    version = doc["schema_version"]
    if type(version) is not int:
        raise MalformedEncoding("schema_version must be an integer")
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise MalformedEncoding("description must be a string")
    mirrors = doc["mirrors"]
    if not isinstance(mirrors, list):
        raise MalformedEncoding("mirrors must be a list of URLs")
    params = doc["params"]
    if not isinstance(params, list):
        raise MalformedEncoding("params must be a list of entries")
    entries: dict[int, ParamEntry] = {}
    for i, raw in enumerate(params):
        entry = _parse_entry(raw, i)
        if entry.k in entries:
            raise InvalidInput(f"k={entry.k} appears twice in the manifest", details={"k": entry.k})
        entries[entry.k] = entry
    return Manifest(mirrors=tuple(check_mirror_url(u) for u in mirrors), entries=entries,
                    schema_version=version, description=description)


def load_manifest(path: str | Path) -> Manifest:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read parameter manifest {path}: {exc.strerror}") from None
    return parse_manifest(data)


def save_manifest(manifest: Manifest, path: str | Path) -> None:
    """Write ``manifest`` atomically (temp file, fsync, rename)."""
    atomic_write_bytes(Path(path), manifest.to_bytes())


def default_manifest_path() -> Path:
    """The bundled development manifest (placeholder entries filled by the release)."""
    return Path(str(resources.files(__package__ or "teeprover.params") / "default_manifest.json"))


def _parse_entry(raw: object, index: int) -> ParamEntry:
    where = f"params[{index}]"
    if not isinstance(raw, dict):
        raise MalformedEncoding(f"{where} must be an object")
    _check_keys(raw, _ENTRY_KEYS, _ENTRY_KEYS, where)
    for key, typ in (("k", int), ("size", int), ("file", str), ("sha256", str), ("insecure", bool)):
        if type(raw[key]) is not typ:  # exact: JSON true is not a size, 1 is not a flag
            raise MalformedEncoding(f"{where}.{key} must be of type {typ.__name__}")
    return ParamEntry(k=raw["k"], file_name=raw["file"], size=raw["size"], sha256=raw["sha256"],
                      insecure=raw["insecure"])


def _check_keys(obj: Mapping[str, Any], allowed: Iterable[str], required: Iterable[str], where: str) -> None:
    unknown = sorted(set(obj) - set(allowed))
    if unknown:
        raise MalformedEncoding(f"{where}: unknown keys {unknown}")
    missing = sorted(set(required) - set(obj))
    if missing:
        raise MalformedEncoding(f"{where}: missing keys {missing}")
