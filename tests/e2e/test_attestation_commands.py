"""``teeprover attestation get / verify`` as README shows them, against the running (simulated) stack.

``get`` prints the nonce it sent and the verify command; README's two lines work as
written once HEX is the printed nonce; refusals name the command-line flags; a bad
nonce is reported for what it is, by the CLI and by the server.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.stack import REPO, Stack

pytestmark = pytest.mark.e2e


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "teeprover.cli", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def _readme_commands() -> list[list[str]]:
    """README's `attestation get` and `attestation verify` lines (the confidential-requests block)."""
    text = (REPO / "README.md").read_text()
    lines = [line.split("#", 1)[0].strip() for line in text.splitlines()
             if line.startswith(".venv/bin/teeprover attestation ")]
    assert [shlex.split(x)[2] for x in lines] == ["get", "verify"], lines
    return [shlex.split(x)[1:] for x in lines]


def test_readme_get_then_verify_works_as_written(stack: Stack, tmp_path: Path) -> None:
    get, verify = _readme_commands()
    got = _cli(*[stack.url if a == "$URL" else a for a in get], cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    nonce = re.search(r"^nonce: ([0-9a-f]{64})$", got.stdout, re.M)
    assert nonce is not None, got.stdout
    doc = (tmp_path / "doc.json").read_text()
    assert f'"nonce": "{nonce.group(1)}"' in doc
    checked = _cli(*[nonce.group(1) if a == "HEX" else a for a in verify], cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("valid")
    # The printed verify command is the same check.
    printed = re.search(r"^verify with: (.+)$", got.stdout, re.M)
    assert printed is not None
    again = _cli(*shlex.split(printed.group(1))[1:], cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_get_takes_a_nonce_and_prints_it_to_stderr_when_the_document_goes_to_stdout(stack: Stack) -> None:
    got = _cli("attestation", "get", "--url", stack.url, "--nonce", "00112233")
    assert got.returncode == 0, got.stderr
    assert '"nonce": "00112233"' in got.stdout
    assert "nonce: 00112233" in got.stderr and "--nonce 00112233 --allow-simulated" in got.stderr


def test_simulated_refusal_names_the_flag(stack: Stack, tmp_path: Path) -> None:
    doc = tmp_path / "doc.json"
    assert _cli("attestation", "get", "--url", stack.url, "--nonce", "ab" * 8, "-o", str(doc)).returncode == 0
    refused = _cli("attestation", "verify", str(doc), "--nonce", "ab" * 8)
    assert refused.returncode == 1
    assert "--allow-simulated" in refused.stdout and "allow_simulated" not in refused.stdout, refused.stdout
    wrong = _cli("attestation", "verify", str(doc), "--nonce", "cd" * 8, "--allow-simulated")
    assert wrong.returncode == 1


@pytest.mark.parametrize(("nonce", "says"), [("zz", "'z' is not one"), ("abc", "odd number of hex digits (3)")])
def test_bad_nonce_is_reported_for_what_it_is(stack: Stack, nonce: str, says: str) -> None:
    cli = _cli("attestation", "get", "--url", stack.url, "--nonce", nonce)
    assert cli.returncode == 2 and says in cli.stderr, cli.stderr
    served = httpx.get(stack.url + "/attestation", params={"nonce": nonce}, timeout=30)
    assert served.status_code == 400
    assert says in served.json()["message"], served.text
    if nonce == "zz":
        assert "odd" not in served.json()["message"]
