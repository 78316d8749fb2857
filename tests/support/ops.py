"""Inputs and helpers of the operations tests (tests/e2e/test_operations.py) that the latency benchmark
(bench/ops_latency.py) shares: the demo request, the k=11 chain circuit whose batches hold a worker, its keys
in the shared test cache, reading the stack's JSON log events, and finding its processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cbor2

from teeprover import zkir
from tests.support.stack import REPO, SHARED_CACHE, Stack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zkir"
DEMO = "builtin/demo/arithmetic"
CHAIN = "test/ops/chain-k11"  # the long circuit, in the shared key store
CHAIN_LENGTH = 1900  # multiplications: 1901 constraints -> k = 11
SCALAR_MODULUS = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
CBOR = "application/cbor"


# ------------------------------------------------------------------------------------ inputs


def demo_request(binding: int | None = None) -> zkir.ProveRequest:
    data = json.loads((FIXTURES / "arithmetic.preimage.json").read_text())
    data["key_location"] = DEMO
    return zkir.ProveRequest(zkir.ProofPreimage.from_json(json.dumps(data).encode()), None, binding)


def chain_circuit() -> bytes:
    """x1 = in0*in1, x(i+1) = x(i)*in1, ...; the last value is the one public input after the binding."""
    ops: list[dict[str, Any]] = [{"op": "mul", "a": 0, "b": 1}]
    ops += [{"op": "mul", "a": 2 + i, "b": 1} for i in range(CHAIN_LENGTH - 1)]
    ops += [{"op": "declare_pub_input", "var": 1 + CHAIN_LENGTH}, {"op": "pi_skip", "guard": None, "count": 1}]
    return json.dumps({"version": {"major": 2, "minor": 0}, "num_inputs": 2, "do_communications_commitment": False,
                       "instructions": ops}).encode()


def chain_request(binding: int = 7) -> zkir.ProveRequest:
    out = 3 * pow(5, CHAIN_LENGTH, SCALAR_MODULUS) % SCALAR_MODULUS
    preimage = {"version": 1, "inputs": ["3", "5"], "private_transcript": [], "public_transcript_inputs": [str(out)],
                "public_transcript_outputs": [], "binding_input": str(binding), "communications_commitment": None,
                "key_location": CHAIN}
    return zkir.ProveRequest(zkir.ProofPreimage.from_json(json.dumps(preimage).encode()))


def long_batch(items: int = 64) -> bytes:
    """A /prove-tx body that keeps one worker busy for about items * 0.3 s."""
    one = cbor2.loads(chain_request().to_cbor())
    return cbor2.dumps([one] * items)


def ensure_chain_keys() -> Path:
    """Keys of the k=11 chain circuit in the shared key store (made once, ~3 s, in a process of its own)."""
    target = SHARED_CACHE / "keys" / CHAIN
    if not (target / "key.json").exists():
        # the development parameters first: a run that starts with this (e.g. `make test-slow`) has none yet
        code = ("import os, sys; from pathlib import Path; from teeprover.keysetup import setup_keys; "
                "from services.supervisor.devsetup import prepare; "
                "prepare(Path(os.environ['TEEPROVER_CACHE_DIR']), 11); "
                "setup_keys(sys.stdin.buffer.read(), Path(sys.argv[1]))")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("TEEPROVER_")},
               "TEEPROVER_CACHE_DIR": str(SHARED_CACHE)}
        subprocess.run([sys.executable, "-c", code, str(target)], input=chain_circuit(), env=env, cwd=REPO,
                       check=True, timeout=120)
    return target


def log_events(lines: list[str], service: str = "prover", msg: str = "job") -> list[dict[str, Any]]:
    out = []
    for line in list(lines):
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("service") == service and entry.get("msg") == msg:
            out.append(entry)
    return out


def parents() -> dict[int, int]:
    """pid → parent pid of every process, from one pass over /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                out[int(entry)] = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


def children(pid: int) -> list[int]:
    return [child for child, parent in parents().items() if parent == pid]


def descendants(pid: int) -> set[int]:
    """Every process whose parent chain reaches ``pid`` (children started in their own session included)."""
    table = parents()
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for child, parent in table.items():
            if parent == p and child not in found:
                found.add(child)
                todo.append(child)
    return found


def prover_pid(stack: Stack) -> int:
    for pid in children(stack.proc.pid):
        if b"services.prover.server" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError("no prover process under the supervisor")
