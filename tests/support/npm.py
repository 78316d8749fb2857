"""snarkjs and circom2 from npm, installed by the tests themselves into a cache folder.

They are the independent verifier and the performance yardstick; nothing is
installed by hand.  The install runs once per machine (a file lock makes
parallel test processes wait for the first one).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TEEPROVER_NPM_CACHE", REPO / ".cache" / "npm"))
PACKAGES = ("snarkjs@0.7.6", "circom2@0.2.23")


def npm_available() -> bool:
    return shutil.which("npm") is not None and shutil.which("node") is not None


def ensure_installed() -> Path:
    """Install the pinned npm packages into the cache once; return the ``.bin`` folder."""
    bin_dir = CACHE / "node_modules" / ".bin"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = CACHE / ".installed"
        if stamp.exists() and stamp.read_text() == " ".join(PACKAGES):
            return bin_dir
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), *PACKAGES],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=600,
        )
        stamp.write_text(" ".join(PACKAGES))
    return bin_dir


def snarkjs(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``snarkjs ARGS`` and return the completed process (never raises on exit code)."""
    exe = ensure_installed() / "snarkjs"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout)


def circom2(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    exe = ensure_installed() / "circom2"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout)
