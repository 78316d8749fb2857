"""The attestation CLI: exit 0 valid, 1 invalid naming the step, 2 malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


# -- a document saved by `attestation get`, and the usage errors of verify / manifest create -------------------

def _served(tmp_path: Path, name: str = "doc.json", **metadata_changes: object) -> tuple[Path, str]:
    """A GET /attestation document from the attestor's own code (simulated signer) and its nonce."""
    import datetime as dt

    from teeprover import hpke
    from teeprover.attestation.evidence import collect
    from teeprover.attestation.evidence.simulated import SimulatedProvider
    from teeprover.attestation.simulated import SimulatedSigner

    nonce = bytes(range(32))
    doc = collect("simulated", nonce, b"\x07" * 32, hpke.generate().public_bytes, dt.datetime.now(dt.UTC),
                  provider=SimulatedProvider(SimulatedSigner()))
    doc["metadata"].update(metadata_changes)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path, nonce.hex()


def test_a_served_document_verifies_with_its_own_binding(tmp_path: Path, capsys) -> None:
    doc, nonce = _served(tmp_path)
    assert main(["attestation", "verify", str(doc), "--allow-simulated"]) == 0
    assert capsys.readouterr().out == "valid: simulated evidence verified\n"
    assert main(["attestation", "verify", str(doc), "--nonce", nonce, "--allow-simulated"]) == 0
    assert main(["attestation", "verify", str(doc)]) == 1  # simulated needs the flag, named as a flag
    assert "--allow-simulated" in capsys.readouterr().out


def test_a_served_document_whose_binding_was_changed_is_invalid(tmp_path: Path, capsys) -> None:
    from teeprover import hpke

    swapped, _ = _served(tmp_path, binding={"hpke_public_key": hpke.generate().public_bytes.hex(),
                                            "tls_spki_sha256": "07" * 32})
    assert main(["attestation", "verify", str(swapped), "--allow-simulated"]) == 1
    assert capsys.readouterr().out.startswith("invalid: step ")
    doc, _ = _served(tmp_path, name="other.json")
    assert main(["attestation", "verify", str(doc), "--nonce", "ab" * 32, "--allow-simulated"]) == 1


@pytest.mark.parametrize(("change", "message"), [
    ({"timestamp_ms": "later"}, "the document's metadata carries no usable key binding"),
    ({"binding": {"hpke_public_key": "not hex"}}, "the document's metadata carries no usable key binding"),
])
def test_a_served_document_without_a_usable_binding_is_exit_2(tmp_path: Path, capsys, change: dict,
                                                               message: str) -> None:
    doc, _ = _served(tmp_path, **change)
    assert main(["attestation", "verify", str(doc), "--allow-simulated"]) == 2
    assert capsys.readouterr().err == f"teeprover: {message}\n"


def test_a_served_document_whose_evidence_is_not_base64_is_exit_2(tmp_path: Path, capsys) -> None:
    doc, _ = _served(tmp_path)
    data = json.loads(doc.read_text())
    data["attestation"] = "not base64!"
    doc.write_text(json.dumps(data))
    assert main(["attestation", "verify", str(doc), "--allow-simulated"]) == 2
    assert capsys.readouterr().err == "teeprover: the document's attestation field is not base64\n"


@pytest.mark.parametrize(("extra", "message"), [
    (["--platform", "azure", "--roots", "{cert}"], "--roots for azure needs --issuer"),
    (["--platform", "azure", "--roots", "{cert}", "--issuer", "https://x"], "--roots is not JSON"),
    (["--platform", "aws-nitro", "--roots", "{junk}"], "--roots holds no certificate"),
    (["--platform", "aws-nitro", "--expect", "{junk}"], "--expect needs --manifest-keys"),
    (["--platform", "aws-nitro", "--expect", "{junk}", "--manifest-keys", "{junk}"], "manifest: "),
    (["--platform", "aws-nitro", "--at", "yesterday"], "--at 'yesterday' is not RFC 3339"),
    (["--platform", "aws-nitro", "--at", "2024-09-07T14:37:40"], "--at needs a time zone"),
    (["--platform", "aws-nitro", "--nonce", "abc"], "--nonce has an odd number of hex digits (3)"),
    ([], "--platform is required for raw evidence"),
])
def test_verify_usage_errors_are_exit_2_naming_the_option(tmp_path: Path, capsys, extra: list[str],
                                                          message: str) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x00 not a certificate, not JSON")
    cert = TESTDATA / "nitro/aws_nitro_enclaves_root_g1.pem"
    args = [a.format(cert=cert, junk=junk) for a in extra]
    assert main(["attestation", "verify", NITRO, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("teeprover: ") and message in err


def test_verify_with_a_pinned_root_of_ones_own(capsys) -> None:
    root = TESTDATA / "nitro/aws_nitro_enclaves_root_g1.pem"
    assert main(["attestation", "verify", NITRO, "--platform", "aws-nitro", "--roots", str(root),
                 "--at", "2024-09-07T14:37:40Z"]) == 0
    sev_root = TESTDATA / "sev-snp/amd_milan_ask_ark_asvk.pem"
    assert main(["attestation", "verify", NITRO, "--platform", "aws-nitro", "--roots", str(sev_root),
                 "--at", "2024-09-07T14:37:40Z"]) == 1  # a valid document under another root does not chain
    assert "step chain" in capsys.readouterr().out


def test_manifest_create_refuses_bad_keys_and_refs(tmp_path: Path, capsys) -> None:
    secret, public = tmp_path / "k.json", tmp_path / "pub.json"
    assert main(["attestation", "manifest", "keygen", "--out", str(secret), "--public", str(public)]) == 0
    assert secret.stat().st_mode & 0o777 == 0o600  # the signing key is readable by its owner only
    base = ["attestation", "manifest", "create", "--git-commit", "a" * 40, "--image-digest", "sha256:" + "b" * 64,
            "--out", str(tmp_path / "m.json")]
    capsys.readouterr()
    assert main([*base, "--keys", str(public), "--ref", "aws-nitro:pcr0=00"]) == 2  # the public half cannot sign
    assert main([*base, "--keys", str(tmp_path / "m.json"), "--ref", "aws-nitro:pcr0=00"]) == 2  # missing
    (tmp_path / "text").write_text("not json")
    assert main([*base, "--keys", str(tmp_path / "text"), "--ref", "aws-nitro:pcr0=00"]) == 2
    assert main([*base, "--keys", str(secret), "--ref", "aws-nitro:pcr0"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4 and all(line.startswith("teeprover: ") for line in err)
    assert err[2] == "teeprover: --keys is not JSON"
    assert err[3] == "teeprover: --ref 'aws-nitro:pcr0': expected KEY=HEX"
    assert not (tmp_path / "m.json").exists()
