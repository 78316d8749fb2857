"""README's configuration table and the config classes list the same keys (services/common/config.py)."""

from __future__ import annotations

import re
from pathlib import Path

from services.common import config

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_keys() -> set[str]:
    """Keys in the first column of the "## Configuration" table (`_ATTESTOR_PORT` is short for TEEPROVER_…)."""
    section = README.read_text().split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    keys = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            for name in re.findall(r"`([A-Z_]+)`", line.split("|")[1]):
                keys.add(config.PREFIX.rstrip("_") + name if name.startswith("_") else name)
    return keys


def test_every_key_the_server_accepts_is_in_the_readme_table() -> None:
    assert sorted(config.KNOWN_KEYS - readme_keys()) == []


def test_every_key_in_the_readme_table_is_accepted_by_the_server() -> None:
    assert sorted(readme_keys() - config.KNOWN_KEYS) == []


def test_the_table_is_found_and_not_trivially_small() -> None:
    assert len(readme_keys()) >= 40
