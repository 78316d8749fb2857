"""The attestation CLI: exit 0 valid, 1 invalid naming the step, 2 malformed input."""

from __future__ import annotations

import json
from pathlib import Path

from teeprover.commands.attestation import main

from .test_attestation_samples import TESTDATA

NITRO = str(TESTDATA / "nitro/blocky_prod_2024-09-07.b64")


def test_verify_valid_at_documented_instant(capsys) -> None:
    assert main(["attestation", "verify", NITRO, "--platform", "aws-nitro", "--at", "2024-09-07T14:37:40Z"]) == 0
    assert "valid" in capsys.readouterr().out


def test_verify_expired_now_names_step(capsys) -> None:
    assert main(["attestation", "verify", NITRO, "--platform", "aws-nitro"]) == 1
    assert "step chain" in capsys.readouterr().out


def test_verify_malformed_input_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\xff\x00garbage")
    assert main(["attestation", "verify", str(junk), "--platform", "aws-nitro"]) == 2
    assert main(["attestation", "verify", str(tmp_path / "missing"), "--platform", "aws-nitro"]) == 2
    assert main(["attestation", "verify", NITRO, "--platform", "aws-nitro", "--nonce", "zz"]) == 2


def test_verify_snp_with_vek_and_json(capsys) -> None:
    args = [
        "attestation",
        "verify",
        str(TESTDATA / "sev-snp/virtee_milan_report.hex"),
        "--platform",
        "sev-snp",
        "--vek",
        str(TESTDATA / "sev-snp/virtee_milan_vcek.der"),
        "--at",
        "2025-01-01T00:00:00Z",
        "--json",
    ]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is True and out["facts"]["product"] == "Milan-B0"


def test_manifest_keygen_create_and_expect(tmp_path: Path, capsys) -> None:
    secret, public, manifest = tmp_path / "k.json", tmp_path / "pub.json", tmp_path / "m.json"
    assert main(["attestation", "manifest", "keygen", "--out", str(secret), "--public", str(public)]) == 0
    pcr0 = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
    base = [
        "attestation",
        "manifest",
        "create",
        "--keys",
        str(secret),
        "--git-commit",
        "a" * 40,
        "--image-digest",
        "sha256:" + "b" * 64,
        "--timestamp",
        "2025-01-01T00:00:00Z",
        "--out",
        str(manifest),
    ]
    assert main([*base, "--ref", f"aws-nitro:pcr0={pcr0}"]) == 0
    verify = [
        "attestation",
        "verify",
        NITRO,
        "--platform",
        "aws-nitro",
        "--at",
        "2024-09-07T14:37:40Z",
        "--expect",
        str(manifest),
        "--manifest-keys",
        str(public),
    ]
    assert main(verify) == 0
    assert main([*base, "--ref", "aws-nitro:pcr0=" + "00" * 48]) == 0
    capsys.readouterr()
    assert main(verify) == 1
    assert "step measurements" in capsys.readouterr().out
    assert main(verify[:-2]) == 2  # --expect without trusted keys
