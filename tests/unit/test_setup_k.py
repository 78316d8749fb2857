"""``teeprover setup --k``: validated to 10..24 in the words of ``params generate``, honoured or refused.

Groth16 keys are made for the circuit's own domain, so ``--k`` is a check: the
circuit's own k is accepted (and written to key.json), anything else is refused
before any key is written.  The missing-parameters hint names both ways to get them.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from teeprover.snarkjs import ptau

REPO = Path(__file__).resolve().parents[2]
CIRCUIT = str(REPO / "tests" / "fixtures" / "zkir" / "arithmetic.zkir.json")  # k = 10


def _cli(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"TEEPROVER_CACHE_DIR": str(cache)} if cache else {})}
    return subprocess.run([sys.executable, "-m", "teeprover.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env=env)


@pytest.fixture(scope="module")
def small_ptau(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ptau") / "dev4.ptau"
    ptau.generate_dev_ptau(4, path, random.Random(11))
    return path


@pytest.mark.parametrize("k", ["9", "25", "ten"])
def test_k_outside_10_to_24_is_refused_like_params_generate(k: str, tmp_path: Path) -> None:
    setup = _cli("setup", CIRCUIT, "-o", str(tmp_path / "keys"), "--k", k)
    assert setup.returncode == 2 and "Traceback" not in setup.stderr
    assert not (tmp_path / "keys").exists()
    if k != "ten":
        generate = _cli("params", "generate", k, "--dev", cache=tmp_path / "cache")
        assert generate.returncode == 2
        assert f"k must be an integer in 10..24, not {k}" in setup.stderr
        assert f"k must be an integer in 10..24, not {k}" in generate.stderr


def test_a_k_other_than_the_circuits_is_refused_before_writing(small_ptau: Path, tmp_path: Path) -> None:
    out = _cli("setup", CIRCUIT, "-o", str(tmp_path / "keys"), "--k", "13", "--ptau", str(small_ptau))
    assert out.returncode == 2, out.stderr
    assert "--k 13: the circuit's k is 10" in out.stderr and "drop --k" in out.stderr
    assert len(out.stderr.splitlines()) == 1
    assert not (tmp_path / "keys").exists()


def test_the_circuits_own_k_is_honoured(small_ptau: Path, tmp_path: Path) -> None:
    out = _cli("setup", CIRCUIT, "-o", str(tmp_path / "keys"), "--k", "10", "--ptau", str(small_ptau))
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "keys" / "key.json").read_text())["k"] == 10


def test_missing_parameters_hint_names_fetch_and_generate_for_that_k(tmp_path: Path) -> None:
    out = _cli("setup", CIRCUIT, "-o", str(tmp_path / "keys"), cache=tmp_path / "empty")
    assert out.returncode == 2
    assert "`teeprover params fetch 10`" in out.stderr and "`teeprover params generate 10 --dev`" in out.stderr
