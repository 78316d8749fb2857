"""Progress bar for ``teeprover params fetch K`` (tqdm over the store's progress callback).

Byte counts, so tqdm; the stage clock for steps without a count is teeprover/progress.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from teeprover.params.store import ParamStore

_LABELS = {"verify": "verify", "download": "download"}


def fetch_with_progress(store: ParamStore, k: int, *, file: TextIO | None = None) -> Path:
    """``store.ensure(k)`` with one progress bar per phase (re-hash, download, verify) on ``file``."""
    out = file if file is not None else sys.stderr
    bars: dict[str, tqdm] = {}
    last_phase: list[str] = []

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "done":
            return
        bar = bars.get(phase) if last_phase and last_phase[-1] == phase else None
        if bar is None:
            for old in bars.values():
                old.close()
            bar = bars[phase] = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                     desc=f"k={k} {_LABELS.get(phase, phase)}", file=out, leave=True)
            last_phase.append(phase)
        if bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        path = store.ensure(k, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    return path
