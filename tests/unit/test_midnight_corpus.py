"""Midnight's own circuits (tests/fixtures/midnight, see its README): every one parses and compiles.

Until the hash and Jubjub gadgets land (issues 11 and 12), a circuit that needs one of the ops in
``PENDING_OPS`` is skipped with a reason naming the ops it still waits for; any other failure fails.
When the last gadget lands, ``PENDING_OPS`` becomes empty and no case may skip.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from teeprover.errors import UnsupportedInstruction
from teeprover.zkir import compile_circuit, load_circuit
from teeprover.zkir.compile import MAX_K, MIN_K

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "midnight"
CIRCUITS = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.zkir"))

# Ops being added by the gadget work of issues 11/12; a skip may only name these.
PENDING_OPS = frozenset({"ec_add", "ec_mul", "ec_mul_generator", "hash_to_curve"})


def _ops(name: str) -> set[str]:
    doc = json.loads((CORPUS / name).read_bytes())
    ops = {ins["op"] for ins in doc["instructions"]}
    if doc["do_communications_commitment"]:
        ops.add("do_communications_commitment")
    return ops


def _skip_if_pending(name: str, exc: UnsupportedInstruction) -> None:
    op = exc.details.get("op")
    if op not in PENDING_OPS:
        raise exc
    waiting = sorted(_ops(name) & PENDING_OPS)
    pytest.skip(f"{name} waits for the gadgets of {', '.join(waiting)} (refused at: {exc.message})")


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
    try:
        circuit = load_circuit(data)
    except UnsupportedInstruction as exc:
        _skip_if_pending(name, exc)
    doc = json.loads(data)
    assert circuit.num_inputs == doc["num_inputs"]
    assert len(circuit.instructions) == len(doc["instructions"])
    assert [ins.op for ins in circuit.instructions] == [ins["op"] for ins in doc["instructions"]]
    assert load_circuit(circuit.to_cbor()) == circuit


@pytest.mark.parametrize("name", CIRCUITS)
def test_corpus_circuit_compiles(name: str) -> None:
    try:
        compiled = compile_circuit(load_circuit((CORPUS / name).read_bytes()))
    except UnsupportedInstruction as exc:
        _skip_if_pending(name, exc)
    assert compiled.num_public == compiled.circuit.num_public_inputs
    assert MIN_K <= compiled.k <= MAX_K
    assert compiled.r1cs.num_constraints > 0
