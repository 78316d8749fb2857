"""`teeprover attestation get` / `verify` against the real stack: the served document binds the served keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
NONCE = "5eed" * 8


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "teeprover.cli", "attestation", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def document(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("att") / "doc.json"
    out = _cli("get", "--url", stack.url, "--nonce", NONCE, "-o", str(path))
    assert out.returncode == 0, out.stderr
    return path


def test_served_simulated_document_verifies_only_when_allowed(document: Path) -> None:
    ok = _cli("verify", str(document), "--nonce", NONCE, "--allow-simulated")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = _cli("verify", str(document), "--nonce", NONCE)
    assert refused.returncode == 1 and "policy" in refused.stdout + refused.stderr


def test_wrong_nonce_fails(document: Path) -> None:
    out = _cli("verify", str(document), "--nonce", "00" * 32, "--allow-simulated")
    assert out.returncode == 1


def test_swapped_hpke_key_breaks_the_binding(document: Path, tmp_path: Path) -> None:
    doc = json.loads(document.read_text())
    key = doc["metadata"]["binding"]["hpke_public_key"]
    assert key and len(bytes.fromhex(key)) == 1216  # the prover's ML-KEM-768 + X25519 key is bound
    doc["metadata"]["binding"]["hpke_public_key"] = "ab" * 1216  # an operator swapping in their own key
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    out = _cli("verify", str(forged), "--nonce", NONCE, "--allow-simulated")
    assert out.returncode == 1


def test_garbage_document_is_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"platform": "aws-nitro", "attestation": "%%%"}')
    assert _cli("verify", str(bad)).returncode == 2
