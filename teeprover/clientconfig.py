"""The command-line client's configuration, built from the environment like the servers' (services/common/config.py).

Two kinds of keys, and no other ``TEEPROVER_*`` read in the library:

* keys only the client reads carry the client prefix ``TEEPROVER_CLIENT_`` (``CLIENT_KEYS``); the servers'
  loader leaves them alone, so a shell that sets them can still start a server.  An unknown
  ``TEEPROVER_CLIENT_*`` key is refused here, as the servers refuse theirs (a typo is never ignored);
* server keys the client reads to find the services' files (``SHARED_KEYS``: the cache directory and the
  parameter manifest), with the servers' defaults.  They are known keys of the servers as well.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from teeprover.errors import InvalidInput

PREFIX = "TEEPROVER_"
CLIENT_PREFIX = PREFIX + "CLIENT_"


@dataclass(frozen=True)
class ClientConfig:
    api_key: str | None = None  # TEEPROVER_CLIENT_API_KEY: the API key for `prove --url` without --api-key
    cache_dir: Path | None = None  # TEEPROVER_CACHE_DIR (server key): None = ~/.cache/midnight
    params_manifest: Path | None = None  # TEEPROVER_PARAMS_MANIFEST (server key): None = dev or bundled manifest

    def cache_root(self) -> Path:
        """The cache directory the services use (default ``~/.cache/midnight``)."""
        return self.cache_dir if self.cache_dir is not None else Path.home() / ".cache" / "midnight"


_CLIENT_FIELDS = ("api_key",)
CLIENT_KEYS = frozenset(CLIENT_PREFIX + name.upper() for name in _CLIENT_FIELDS)
SHARED_KEYS = frozenset(PREFIX + f.name.upper() for f in fields(ClientConfig) if f.name not in _CLIENT_FIELDS)


def load(environ: Mapping[str, str] | None = None) -> ClientConfig:
    """The client's configuration from ``environ`` (default ``os.environ``); unknown client keys fail."""
    env = os.environ if environ is None else environ
    unknown = sorted(k for k in env if k.startswith(CLIENT_PREFIX) and k not in CLIENT_KEYS)
    if unknown:
        raise InvalidInput(f"unknown client configuration keys: {', '.join(unknown)} "
                           f"(known: {', '.join(sorted(CLIENT_KEYS))})")

    def path(key: str) -> Path | None:
        text = env.get(key, "").strip()
        return Path(os.path.expanduser(text)) if text else None

    return ClientConfig(
        api_key=env.get(CLIENT_PREFIX + "API_KEY", "").strip() or None,
        cache_dir=path(PREFIX + "CACHE_DIR"),
        params_manifest=path(PREFIX + "PARAMS_MANIFEST"),
    )
