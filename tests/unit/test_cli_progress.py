"""Long commands show stage lines with the elapsed time on a terminal, and nothing when stderr is not one.

The terminal is a real pseudo-terminal (``pty``) given to the command as its stderr.
"""

from __future__ import annotations

import os
import pty
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from teeprover.snarkjs import ptau

REPO = Path(__file__).resolve().parents[2]
CIRCUIT = str(REPO / "tests" / "fixtures" / "zkir" / "arithmetic.zkir.json")
PREIMAGE = str(REPO / "examples" / "arithmetic.preimage.json")
FINISHED = re.compile(r"(?P<stage>.+): (?P<seconds>\d+\.\d) s")


def run(args: list[str], *, tty: bool, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``teeprover ARGS`` with stderr on a pseudo-terminal or a pipe."""
    cmd = [sys.executable, "-m", "teeprover.cli", *args]
    full_env = {**os.environ, **(env or {})}
    if not tty:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=full_env)
        return out.returncode, out.stdout, out.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, cwd=REPO, env=full_env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.stdout is not None
    stdout = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(60), stdout, b"".join(chunks).decode()


def finished_stages(stderr: str) -> list[str]:
    """The final line of each stage ("STAGE: 1.2 s"), from the redrawn lines on the terminal."""
    pieces = re.split(r"\r\x1b\[K|\r?\n", stderr)
    return [m.group("stage") for m in map(FINISHED.fullmatch, pieces) if m]


@pytest.fixture(scope="module")
def small_ptau(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ptau") / "dev4.ptau"
    ptau.generate_dev_ptau(4, path, random.Random(5))
    return path


def test_params_generate_shows_its_stage_on_a_terminal_only(tmp_path: Path) -> None:
    code, _out, err = run(["params", "generate", "10", "--dev"], tty=True,
                          env={"TEEPROVER_CACHE_DIR": str(tmp_path / "a")})
    assert code == 0, err
    assert finished_stages(err) == ["generating INSECURE development parameters for k=10"], err
    code, _out, err = run(["params", "generate", "10", "--dev"], tty=False,
                          env={"TEEPROVER_CACHE_DIR": str(tmp_path / "b")})
    assert code == 0 and err == ""


def test_setup_and_local_prove_show_their_stages_on_a_terminal_only(small_ptau: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    code, _out, err = run(["setup", CIRCUIT, "-o", str(keys), "--ptau", str(small_ptau)], tty=True)
    assert code == 0, err
    stages = finished_stages(err)
    assert stages[0] == "compiling the circuit" and any(s.startswith("generating keys (") for s in stages), err
    code, _out, err = run(["prove", CIRCUIT, PREIMAGE, "--keys", str(keys), "-o", str(tmp_path / "p.cbor")], tty=True)
    assert code == 0, err
    assert finished_stages(err) == ["proving"], err
    # Not a terminal: silent.
    code, _out, err = run(["setup", CIRCUIT, "-o", str(tmp_path / "k2"), "--ptau", str(small_ptau)], tty=False)
    assert code == 0 and err == ""
    code, _out, err = run(["prove", CIRCUIT, PREIMAGE, "--keys", str(keys), "-o", str(tmp_path / "q.cbor")],
                          tty=False)
    assert code == 0 and err == ""


def test_a_failing_stage_ends_its_line_before_the_error(tmp_path: Path) -> None:
    code, _out, err = run(["setup", CIRCUIT, "-o", str(tmp_path / "keys")], tty=True,
                          env={"TEEPROVER_CACHE_DIR": str(tmp_path / "empty")})
    assert code == 2
    assert re.search(r"loading parameters \(k=10\): failed after \d+\.\d s\r?\n(\x1b\[K)?teeprover: ", err), err
