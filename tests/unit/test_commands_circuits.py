"""``teeprover setup | prove | verify | k | check`` (teeprover/commands/circuits.py), run in-process on real files.

Keys come from a real set-up of the arithmetic fixture on a small development ``.ptau``; the proofs are real.
What is checked is what a wallet or an operator sees: the exit code (0 valid, 1 invalid, 2 their mistake) and
one line on stderr naming the problem.  ``--url`` is served by a loopback HTTP server that answers with a proof
made here, so the client's own check of the server's proof runs against real bytes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from teeprover.cli import main
from teeprover.groth16 import encoding
from teeprover.snarkjs import export, ptau
from tests.support.loopback_http import LoopbackHttp, send

REPO = Path(__file__).resolve().parents[2]
CIRCUIT = REPO / "tests" / "fixtures" / "zkir" / "arithmetic.zkir.json"
PREIMAGE = REPO / "examples" / "arithmetic.preimage.json"
PUBLIC = [1234567, 14]  # tests/fixtures/zkir/arithmetic.expected.json


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("teeprover: "), err
    return lines[0]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    small = root / "dev4.ptau"
    ptau.generate_dev_ptau(4, small, random.Random(7))
    assert main(["setup", str(CIRCUIT), "-o", str(root / "k"), "--ptau", str(small)]) == 0
    return root / "k"


@pytest.fixture(scope="module")
def proved(keys: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """proof.cbor and the snarkjs files of one local proof."""
    out = tmp_path_factory.mktemp("proof")
    assert main(["prove", str(CIRCUIT), str(PREIMAGE), "--keys", str(keys), "-o", str(out / "proof.cbor"),
                 "--snarkjs", str(out / "snarkjs")]) == 0
    return out


def test_local_prove_writes_a_proof_that_verifies_in_both_encodings(proved: Path, keys: Path, capsys) -> None:
    assert export.public_from_json((proved / "snarkjs/public.json").read_text()) == PUBLIC
    code, out, err = _run(capsys, "verify", "--vk", keys / "vk.cbor", "--proof", proved / "proof.cbor",
                          "--public", proved / "snarkjs/public.json")
    assert (code, out, err) == (0, "valid\n", "")
    code, out, _ = _run(capsys, "verify", "--vk", proved / "snarkjs/verification_key.json",
                        "--proof", proved / "snarkjs/proof.json", "--public", proved / "snarkjs/public.json")
    assert (code, out) == (0, "valid\n")


def test_a_proof_for_other_public_inputs_is_invalid_exit_1(proved: Path, keys: Path, tmp_path: Path,
                                                           capsys) -> None:
    (tmp_path / "public.json").write_text(export.public_json([1234567, 15]))
    code, out, err = _run(capsys, "verify", "--vk", keys / "vk.cbor", "--proof", proved / "proof.cbor",
                          "--public", tmp_path / "public.json")
    assert (code, out, err) == (1, "INVALID\n", "")


@pytest.mark.parametrize(("which", "content", "message"), [
    ("vk", b'{"protocol": "groth16"}', "verification key JSON lacks a field"),
    ("vk", b"\xa1\x01\x02", "MalformedEncoding"),
    ("proof", b"[1, 2]", "proof JSON lacks a field"),
    ("public", b'{"a": 1}', "public.json must be an array"),
    ("public", b'["1"]', "InvalidInput"),  # one public input where the key has two
])
def test_malformed_verify_inputs_are_exit_2_in_one_line(proved: Path, keys: Path, tmp_path: Path, capsys,
                                                        which: str, content: bytes, message: str) -> None:
    files = {"vk": keys / "vk.cbor", "proof": proved / "proof.cbor", "public": proved / "snarkjs/public.json"}
    files[which] = tmp_path / f"bad-{which}"
    files[which].write_bytes(content)
    code, out, err = _run(capsys, "verify", "--vk", files["vk"], "--proof", files["proof"], "--public",
                          files["public"])
    assert code == 2 and out == ""
    assert message in _one_error_line(err)


def test_a_missing_verify_input_names_the_file(keys: Path, tmp_path: Path, capsys) -> None:
    code, _, err = _run(capsys, "verify", "--vk", keys / "vk.cbor", "--proof", tmp_path / "nope.cbor",
                        "--public", tmp_path / "nope.json")
    assert code == 2
    assert f"cannot read proof {tmp_path / 'nope.cbor'}: No such file or directory" in _one_error_line(err)


@pytest.mark.parametrize(("args", "message"), [
    (["setup"], "setup needs CIRCUIT and -o/--out (or --builtin)"),
    (["setup", str(CIRCUIT)], "setup needs CIRCUIT and -o/--out (or --builtin)"),
    (["setup", "--builtin", "midnight/zswap/nope"], "unknown built-in key(s) midnight/zswap/nope"),
    (["prove", "-o", "x.cbor"], "prove needs CIRCUIT and PREIMAGE (or --r1cs/--wtns/--zkey)"),
    (["prove", str(CIRCUIT), str(PREIMAGE), "-o", "x.cbor"], "local proving needs --keys DIR"),
    (["prove", "--r1cs", "c.r1cs", "-o", "x.cbor"], "--r1cs, --wtns and --zkey go together"),
])
def test_incomplete_commands_say_what_is_missing(args: list[str], message: str, tmp_path: Path, capsys,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *args)
    assert code == 2 and out == ""
    assert message in _one_error_line(err)
    assert not (tmp_path / "x.cbor").exists()


def test_prove_with_a_keys_directory_without_keys_is_a_users_mistake(tmp_path: Path, capsys) -> None:
    # Regression: NotFound fell through to exit 1, which says "a proof that does not verify" to a script.
    code, _, err = _run(capsys, "prove", CIRCUIT, PREIMAGE, "--keys", tmp_path / "empty", "-o", tmp_path / "p")
    assert code == 2
    assert "NotFound: no keys for key_location" in _one_error_line(err)


def test_k_and_check_answer_on_stdout(tmp_path: Path, capsys) -> None:
    assert _run(capsys, "k", CIRCUIT) == (0, "10\n", "")
    assert _run(capsys, "check", CIRCUIT, PREIMAGE) == (0, "[0]\n", "")
    wrong = json.loads(PREIMAGE.read_text())
    wrong["public_transcript_inputs"] = ["15"]  # 3 * 4 + 2 is 14
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
    code, out, _ = _run(capsys, "check", CIRCUIT, tmp_path / "wrong.json")
    assert code == 1 and not all(isinstance(a, int) for a in json.loads(out))
    code, _, err = _run(capsys, "k", tmp_path / "wrong.json")  # a preimage is not a circuit
    assert code == 2 and "MalformedEncoding" in _one_error_line(err)


@pytest.mark.parametrize("k", ["ten", "9"])
def test_a_bad_k_argument_is_a_usage_error(k: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["setup", str(CIRCUIT), "-o", "x", "--k", k])
    assert exit_.value.code == 2
    assert ("k must be an integer, not 'ten'" if k == "ten" else "k must be an integer in 10..24, not 9") in (
        capsys.readouterr().err)


# -- prove --url: the client checks the server's proof -------------------------------------------------------

class _Prover(BaseHTTPRequestHandler):
    """POST /prove answers ``owner["proof"]``; GET /verifying-key/... answers ``owner["vk"]``, or 404 (the error
    JSON of the gateway) when it is None.  Every request is logged as "METHOD path"."""

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, data: bytes, status: int = 200, ctype: str = "application/cbor") -> None:
        send(self, status, ctype, data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        with self.server.http.answering() as log:  # type: ignore[attr-defined]
            log(f"POST {self.path}")
            self.rfile.read(int(self.headers["content-length"]))
        self._reply(self.server.owner["proof"])  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        with self.server.http.answering() as log:  # type: ignore[attr-defined]
            log(f"GET {self.path}")
        vk = self.server.owner["vk"]  # type: ignore[attr-defined]
        if vk is None:
            location = self.path.removeprefix("/verifying-key/")
            self._reply(json.dumps({"error": "NotFound", "message": f"no keys for key_location {location!r}",
                                    "details": {}, "request_id": "r1"}).encode(), 404, "application/json")
        else:
            self._reply(vk)


VK_ROUTE = "GET /verifying-key/builtin/demo/arithmetic"  # the preimage's key_location


@pytest.fixture
def prover(proved: Path, keys: Path) -> Iterator[tuple[LoopbackHttp, dict[str, bytes | None]]]:
    answers: dict[str, bytes | None] = {"proof": (proved / "proof.cbor").read_bytes(),
                                        "vk": (keys / "vk.cbor").read_bytes()}
    with LoopbackHttp(_Prover, "fake-prover", owner=answers) as srv:
        yield srv, answers


def _tampered(proof_bytes: bytes | None) -> bytes:
    assert proof_bytes is not None
    proof = encoding.decode_proof(proof_bytes)
    return encoding.encode_proof(type(proof)(a=proof.c, b=proof.b, c=proof.a))  # well-formed, does not verify


@pytest.mark.parametrize("snarkjs", [False, True])
def test_remote_prove_checks_the_proof_against_the_servers_verifying_key(prover, tmp_path: Path, capsys,
                                                                          snarkjs: bool) -> None:
    srv, answers = prover
    extra: list[str | Path] = ["--snarkjs", tmp_path / "sj"] if snarkjs else []
    code, out, err = _run(capsys, "prove", CIRCUIT, PREIMAGE, "--url", srv.url, "-o", tmp_path / "p.cbor", *extra)
    assert (code, err) == (0, "") and out == f"proof written to {tmp_path / 'p.cbor'}\n"
    # The key is fetched before the witness is sent, with or without --snarkjs.
    assert srv.requests() == [VK_ROUTE, "POST /prove"]
    assert (tmp_path / "p.cbor").read_bytes() == answers["proof"]
    if snarkjs:
        assert export.public_from_json((tmp_path / "sj/public.json").read_text()) == PUBLIC


@pytest.mark.parametrize("snarkjs", [False, True])
def test_remote_prove_rejects_a_proof_that_does_not_verify_and_writes_nothing(prover, tmp_path: Path, capsys,
                                                                              snarkjs: bool) -> None:
    srv, answers = prover
    answers["proof"] = _tampered(answers["proof"])
    extra: list[str | Path] = ["--snarkjs", tmp_path / "sj"] if snarkjs else []
    code, out, err = _run(capsys, "prove", CIRCUIT, PREIMAGE, "--url", srv.url, "-o", tmp_path / "p.cbor", *extra)
    assert code == 1 and out == ""
    assert "ProofRejected: the server's proof does not verify against the verifying key" in _one_error_line(err)
    assert not (tmp_path / "p.cbor").exists() and not (tmp_path / "sj").exists()


def test_remote_prove_rejects_an_answer_that_is_not_a_proof(prover, tmp_path: Path, capsys) -> None:
    srv, answers = prover
    answers["proof"] = b"\xa1\x01\x02"
    code, _, err = _run(capsys, "prove", CIRCUIT, PREIMAGE, "--url", srv.url, "-o", tmp_path / "p.cbor")
    assert code == 1
    assert "ProofRejected: the server's answer is not a proof" in _one_error_line(err)
    assert not (tmp_path / "p.cbor").exists()


@pytest.mark.parametrize("snarkjs", [False, True])
@pytest.mark.parametrize(("vk", "message"), [
    (None, "the server has no verifying key for 'builtin/demo/arithmetic' (404 NotFound: no keys for key_location"),
    (b"", "its answer for the verifying key of 'builtin/demo/arithmetic' is not a verifying key"),
    (b"\xa1\x01\x02", "its answer for the verifying key of 'builtin/demo/arithmetic' is not a verifying key"),
])
def test_remote_prove_without_a_verifying_key_is_an_error_and_sends_and_writes_nothing(
        prover, tmp_path: Path, capsys, vk: bytes | None, message: str, snarkjs: bool) -> None:
    srv, answers = prover
    answers["vk"] = vk
    extra: list[str | Path] = ["--snarkjs", tmp_path / "sj"] if snarkjs else []
    code, out, err = _run(capsys, "prove", CIRCUIT, PREIMAGE, "--url", srv.url, "-o", tmp_path / "p.cbor", *extra)
    assert code == 2 and out == ""
    line = _one_error_line(err)
    assert "NoVerifyingKey: cannot check the server's proof: " in line and message in line
    assert srv.requests() == [VK_ROUTE]  # the witness was never sent
    assert not (tmp_path / "p.cbor").exists() and not (tmp_path / "sj").exists()


def test_remote_prove_with_keys_checks_against_the_key_sent_without_fetching(prover, keys: Path, tmp_path: Path,
                                                                             capsys) -> None:
    srv, answers = prover
    answers["vk"] = None  # the server holds no key for the location: --keys carries it
    code, out, _ = _run(capsys, "prove", CIRCUIT, PREIMAGE, "--keys", keys, "--url", srv.url, "-o", tmp_path / "p.cbor")
    assert code == 0 and out == f"proof written to {tmp_path / 'p.cbor'}\n"
    assert srv.requests() == ["POST /prove"]
    answers["proof"] = _tampered(answers["proof"])
    code, _, err = _run(capsys, "prove", CIRCUIT, PREIMAGE, "--keys", keys, "--url", srv.url, "-o", tmp_path / "q.cbor")
    assert code == 1 and "ProofRejected" in _one_error_line(err)
    assert not (tmp_path / "q.cbor").exists()


def test_no_verify_writes_the_servers_answer_unchecked_and_says_so(prover, tmp_path: Path, capsys) -> None:
    srv, answers = prover
    answers["vk"] = None
    answers["proof"] = _tampered(answers["proof"])
    code, out, err = _run(capsys, "prove", CIRCUIT, PREIMAGE, "--url", srv.url, "-o", tmp_path / "p.cbor",
                          "--no-verify")
    assert (code, err) == (0, "") and out == f"proof written to {tmp_path / 'p.cbor'} (NOT verified: --no-verify)\n"
    assert (tmp_path / "p.cbor").read_bytes() == answers["proof"]
    assert srv.requests() == ["POST /prove"]


@pytest.mark.parametrize("extra", [["--snarkjs", "sj"], ["--keys", "k"], []])
def test_no_verify_is_refused_where_the_proof_is_checked_anyway(prover, tmp_path: Path, capsys, extra: list[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    srv, _ = prover
    monkeypatch.chdir(tmp_path)
    url = ["--url", srv.url] if extra else []  # [] : local proving, where --no-verify means nothing
    code, out, err = _run(capsys, "prove", CIRCUIT, PREIMAGE, *url, *extra, "-o", "p.cbor", "--no-verify")
    assert code == 2 and out == ""
    assert "--no-verify only applies to --url without --keys or --snarkjs" in _one_error_line(err)
    assert srv.requests() == [] and not (tmp_path / "p.cbor").exists()
