"""Midnight's own circuits (tests/fixtures/midnight, see its README): every one parses and compiles."""

from __future__ import annotations

import hashlib
import json
import re
from functools import cache
from pathlib import Path

import pytest

from teeprover.zkir import CompiledCircuit, compile_circuit, load_circuit
from teeprover.zkir.compile import MAX_K, MIN_K

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "midnight"
CIRCUITS = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.zkir"))


@cache
def _compiled(digest: str) -> CompiledCircuit:
    """One compilation per distinct file (zswap and dust circuits are in the corpus twice, byte for byte)."""
    path = next(CORPUS / c for c in CIRCUITS if hashlib.sha256((CORPUS / c).read_bytes()).hexdigest() == digest)
    return compile_circuit(load_circuit(path.read_bytes()))


def test_the_corpus_is_complete_and_unmodified() -> None:
    precompiles = [c for c in CIRCUITS if c.startswith("zkir-precompiles/")]
    assert len(precompiles) == 24
    assert {"zswap/static/spend.zkir", "zswap/static/output.zkir", "zswap/static/sign.zkir",
            "ledger/static/dust/spend.zkir"} <= set(CIRCUITS)
    assert len(CIRCUITS) == 28
    readme = (CORPUS / "README.md").read_text()
    listed = dict(re.findall(r"^\| `([^`]+)` \| \d+ \| `([0-9a-f]{64})` \|$", readme, re.MULTILINE))
    assert listed == {c: hashlib.sha256((CORPUS / c).read_bytes()).hexdigest() for c in CIRCUITS}
    assert "Apache License" in (CORPUS / "LICENSE").read_text()


@pytest.mark.parametrize("name", CIRCUITS)
def test_corpus_circuit_parses(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    circuit = load_circuit(data)
    doc = json.loads(data)
    assert circuit.num_inputs == doc["num_inputs"]
    assert circuit.do_communications_commitment == doc["do_communications_commitment"]
    assert [ins.op for ins in circuit.instructions] == [ins["op"] for ins in doc["instructions"]]
    assert load_circuit(circuit.to_cbor()) == circuit


# The four k = 19 contract circuits take most of the compile time (10-25 s each): they compile in `make test-slow`.
LARGE = {"zkir-precompiles/composable-relay/send_to_burn.zkir", "zkir-precompiles/micro-dao/buyIn.zkir",
         "zkir-precompiles/token-vault/depositShielded.zkir", "zkir-precompiles/token-vault/withdrawShielded.zkir"}


@pytest.mark.parametrize("name", [pytest.param(c, marks=pytest.mark.slow) if c in LARGE else c for c in CIRCUITS])
def test_corpus_circuit_compiles(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    compiled = _compiled(hashlib.sha256(data).hexdigest())
    assert compiled.circuit == load_circuit(data)
    assert compiled.num_public == compiled.circuit.num_public_inputs
    assert MIN_K <= compiled.k <= MAX_K
    assert compiled.r1cs.num_constraints + compiled.num_public + 1 <= 1 << compiled.k
