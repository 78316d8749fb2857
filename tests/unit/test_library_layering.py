"""The library does not import the services: every ``teeprover`` module imports with ``services`` unreachable.

Nor does it import the command line: outside ``teeprover/commands/`` and ``teeprover/cli.py`` no module names
``teeprover.commands`` (read from the source, so imports inside functions count too).

Run in a fresh interpreter whose import system refuses ``services`` (the editable install would find it
anywhere on the path), so a module that reaches for the services at import time fails here.  Only
``teeprover serve`` imports them, inside the command, when it runs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "teeprover"
CLI = ("teeprover.commands", "teeprover.cli")

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


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, module: str) -> set[str]:
    """Every module an import in ``path`` names (``from`` and relative ones resolved), anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            origin = ".".join([*base, node.module] if node.module else base)
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)  # from teeprover import commands
    return names


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def cli_imports_in_library(root: Path = REPO) -> dict[str, list[str]]:
    """Library module -> the ``teeprover.commands`` names it imports, for every module under ``root/teeprover``."""
    found = {}
    for path in sorted((root / "teeprover").rglob("*.py")):
        module = _module_name(path, root)
        if any(_within(module, cli) for cli in CLI):
            continue
        hits = sorted(n for n in imported_names(path, module) if _within(n, "teeprover.commands"))
        if hits:
            found[module] = hits
    return found


def test_the_library_does_not_import_the_command_line() -> None:
    assert len(list(LIBRARY.rglob("*.py"))) >= 80  # the scan saw the library
    assert cli_imports_in_library() == {}


def test_the_scan_sees_absolute_relative_and_nested_imports(tmp_path: Path) -> None:
    (tmp_path / "teeprover" / "params").mkdir(parents=True)
    (tmp_path / "teeprover" / "commands").mkdir()
    (tmp_path / "teeprover" / "commands" / "circuits.py").write_text("import teeprover.commands._common\n")
    (tmp_path / "teeprover" / "cli.py").write_text("from teeprover.commands import circuits\n")
    (tmp_path / "teeprover" / "params" / "clean.py").write_text("from teeprover.progress import Progress\n")
    (tmp_path / "teeprover" / "params" / "probe.py").write_text(
        "def later():\n"
        "    from teeprover.commands._common import fail\n"
        "from ..commands import circuits\n"
        "from .. import commands\n"
        "import teeprover.commands.params\n")
    assert cli_imports_in_library(tmp_path) == {"teeprover.params.probe": [
        "teeprover.commands", "teeprover.commands._common", "teeprover.commands._common.fail",
        "teeprover.commands.circuits", "teeprover.commands.params"]}
