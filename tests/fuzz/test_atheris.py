"""Short coverage-guided runs (the long one: ``make fuzz-atheris``) and a planted bug the fuzzer must find."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.fuzz import atheris_run

RUNS = 400  # per target: seconds, not minutes


@pytest.mark.parametrize("name", ["preimage-any", "zkir-k"])
def test_a_short_coverage_guided_run_finds_no_bug(name: str, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    done = subprocess.run([sys.executable, "-m", "tests.fuzz.atheris_run", "--child", name, "--runs", str(RUNS),
                           "--corpus", str(corpus), "--artifacts", str(tmp_path / "artifacts")],
                          cwd=atheris_run.REPO, capture_output=True, text=True, timeout=300)
    found = atheris_run.parse(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]
    assert found["runs"] == RUNS and "crash" not in found
    assert found["edges"] > 20 and found["corpus"] >= len(atheris_run._seeds(name))  # it saw the decoder's code


def test_the_fuzzer_finds_a_planted_bug_behind_a_comparison(tmp_path: Path) -> None:
    # A decoder that only fails past a 3-byte magic: random bytes would need ~16 million tries, coverage
    # guidance (comparison tracing) finds it in thousands.
    script = tmp_path / "planted.py"
    script.write_text(textwrap.dedent("""
        import sys, atheris

        @atheris.instrument_func
        def decode(data: bytes) -> None:
            if len(data) >= 4 and data[0] == 0x7E and data[1] == 0x51 and data[2] == 0xA3:
                raise IndexError("planted decoder bug")

        atheris.Setup([sys.argv[0], "-runs=500000", "-artifact_prefix=" + sys.argv[1]], decode)
        atheris.Fuzz()
    """))
    done = subprocess.run([sys.executable, str(script), f"{tmp_path}/"], capture_output=True, text=True, timeout=300)
    found = atheris_run.parse(done.stdout + done.stderr)
    assert done.returncode != 0
    assert "IndexError: planted decoder bug" in found.get("crash", "") + done.stderr
    [crash] = tmp_path.glob("crash-*")
    assert crash.read_bytes()[:3] == b"\x7e\x51\xa3"


def test_every_target_has_seeds_that_decode_or_are_rejected_cleanly() -> None:
    from teeprover.errors import TeeProverError

    for name in atheris_run.target_names():
        seeds = atheris_run._seeds(name)
        assert seeds, name
        decode = atheris_run._decoder(name)
        for seed in seeds:
            try:
                decode(seed)
            except TeeProverError:
                pass
