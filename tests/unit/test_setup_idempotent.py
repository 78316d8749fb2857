"""`make test`'s set-up step is idempotent: once done, a second run has nothing to install or generate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_second_setup_does_nothing() -> None:
    # `make -q` exits 0 only when every prerequisite (venv install stamp, generated code) is up to date.
    out = subprocess.run(["make", "-q", "setup"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, "make setup would run again: " + subprocess.run(
        ["make", "-n", "setup"], cwd=REPO, capture_output=True, text=True, timeout=60).stdout
