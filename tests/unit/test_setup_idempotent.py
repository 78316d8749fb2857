"""`make test`'s set-up step is idempotent: once done, a second run has nothing to install or generate;
and a rebuilt extension replaces the old file instead of writing into it."""

from __future__ import annotations

import mmap
import runpy
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


def _replacing_build_ext() -> type:
    # setup.py calls setup() only as __main__ (how setuptools runs it), so its class loads alone.
    return runpy.run_path(str(REPO / "setup.py"), run_name="setup_under_test")["ReplacingBuildExt"]


def test_rebuilt_extension_replaces_the_file_a_process_has_mapped(tmp_path: Path) -> None:
    # A rebuild while a server runs must not change the code under the server's feet: the new .so gets
    # a new inode, and the old mapping still reads the old bytes.
    from setuptools.dist import Distribution

    command = _replacing_build_ext()(Distribution())
    old, new = b"old build" * 1000, b"new build" * 1000
    target, built = tmp_path / "_native.so", tmp_path / "build" / "_native.so"
    built.parent.mkdir()
    target.write_bytes(old)
    built.write_bytes(new)
    inode = target.stat().st_ino
    with target.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        out, copied = command.copy_file(str(built), str(target))
        assert (out, copied) == (str(target), 1)
        assert mapped[:] == old
    assert target.read_bytes() == new
    assert target.stat().st_ino != inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_native.so", "build"]  # no staging file left


def test_first_build_copies_as_usual(tmp_path: Path) -> None:
    from setuptools.dist import Distribution

    command = _replacing_build_ext()(Distribution())
    built, target = tmp_path / "built.so", tmp_path / "_native.so"
    built.write_bytes(b"first build")
    assert command.copy_file(str(built), str(target)) == (str(target), 1)
    assert target.read_bytes() == b"first build"
