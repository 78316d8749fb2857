"""Helpers for the TEE device files: ioctl request numbers (the _IOWR macro, for the NSM and /dev/sev-guest)
and reading small text attributes (configfs-tsm, DMI)."""

from __future__ import annotations

from pathlib import Path


def _iowr(kind: int, nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (kind << 8) | nr


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""
