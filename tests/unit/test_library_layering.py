"""The library does not import the services: every ``teeprover`` module imports with ``services`` unreachable.

Run in a fresh interpreter whose import system refuses ``services`` (the editable install would find it
anywhere on the path), so a module that reaches for the services at import time fails here.  Only
``teeprover serve`` imports them, inside the command, when it runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import importlib, importlib.abc, pkgutil, sys

class NoServices(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "services" or name.startswith("services."):
            raise ModuleNotFoundError(f"the library imported {name}", name=name)
        return None

sys.meta_path.insert(0, NoServices())
import teeprover

names = sorted(m.name for m in pkgutil.walk_packages(teeprover.__path__, "teeprover."))
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
print(len(names))
print("\n".join(failed))
assert not any(m == "services" or m.startswith("services.") for m in sys.modules), "services got imported"
"""


def test_every_teeprover_module_imports_without_the_services() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    count, *failures = out.stdout.splitlines()
    assert [f for f in failures if f] == []
    assert int(count) >= 80  # the walk found the library, not an empty package


def test_the_probe_catches_a_module_that_imports_the_services() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE.replace("import teeprover\n", "import teeprover\n"
                                                                 "import services.common.config\n", 1)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "the library imported services" in out.stderr
