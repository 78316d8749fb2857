"""The load test's circuits: multiplication chains sized for k = 10..14, their keys and expected answers.

A chain ``x1 = in0*in1, x(i+1) = x(i)*in1`` of ``n`` multiplications has ``n + 1`` constraints,
so ``n = 2^(k-1) + 100`` lands on k exactly.  Keys are made once per cache directory (the
stack's ``TEEPROVER_CACHE_DIR``) under ``loadtest/chain-k{k}``; development parameters up to
k = 14 are made first by the same code ``teeprover serve all`` uses.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from teeprover import zkir
from teeprover.curve import R
from teeprover.groth16 import encoding
from teeprover.groth16.types import Proof, VerifyingKey
from teeprover.groth16.verify import verify
from teeprover.keystore import read_key_dir

log = logging.getLogger("bench.loadtest")

K_RANGE = range(10, 15)
IN0, IN1 = 3, 5


def chain_length(k: int) -> int:
    return (1 << (k - 1)) + 100


def location(k: int) -> str:
    return f"loadtest/chain-k{k}"


def chain_circuit(n: int) -> bytes:
    """ZKIR v2 JSON: n multiplications; the last value is the one public input after the binding."""
    ops: list[dict[str, Any]] = [{"op": "mul", "a": 0, "b": 1}]
    ops += [{"op": "mul", "a": 2 + i, "b": 1} for i in range(n - 1)]
    ops += [{"op": "declare_pub_input", "var": 1 + n}, {"op": "pi_skip", "guard": None, "count": 1}]
    return json.dumps({"version": {"major": 2, "minor": 0}, "num_inputs": 2, "do_communications_commitment": False,
                       "instructions": ops}).encode()


@dataclass(frozen=True)
class Chain:
    """One load-test circuit with everything the client needs to build requests and judge replies."""

    k: int
    circuit_json: bytes
    vk: VerifyingKey

    @property
    def out(self) -> int:
        return IN0 * pow(IN1, chain_length(self.k), R) % R

    def preimage(self, binding: int) -> zkir.ProofPreimage:
        data = {"version": 1, "inputs": [str(IN0), str(IN1)], "private_transcript": [],
                "public_transcript_inputs": [str(self.out)], "public_transcript_outputs": [],
                "binding_input": str(binding), "communications_commitment": None, "key_location": location(self.k)}
        return zkir.ProofPreimage.from_json(json.dumps(data).encode())

    def prove_body(self, binding: int) -> bytes:
        return zkir.ProveRequest(self.preimage(binding)).to_cbor()

    @cached_property
    def check_body(self) -> bytes:
        return self.preimage(1).to_cbor()

    @cached_property
    def expected_check(self) -> list[Any]:
        """What /check must answer: the library's own check of the same preimage against the same circuit."""
        circuit = zkir.load_circuit(self.circuit_json)
        return list(zkir.check(circuit, self.preimage(1)))

    def proof_is_valid(self, binding: int, proof_bytes: bytes) -> bool:
        """The library verifier with this circuit's verifying key; also refuses a proof for another binding."""
        proof: Proof = encoding.decode_proof(proof_bytes)
        return verify(self.vk, [binding, self.out], proof) and not verify(self.vk, [binding + 1, self.out], proof)


def prepare(cache: Path) -> dict[int, Chain]:
    """Dev parameters k = 10..14 and the chains' keys in ``cache`` (made once); the chains with their keys."""
    from services.supervisor import devsetup
    from teeprover.keysetup import setup_keys

    devsetup.prepare(cache, max(K_RANGE))
    for k in K_RANGE:
        target = cache / "keys" / location(k)
        if not (target / "key.json").exists():
            log.info("setting up keys for %s", location(k))
            meta = setup_keys(chain_circuit(chain_length(k)), target, cache=cache)
            if meta["k"] != k:
                raise RuntimeError(f"chain for k={k} compiled to k={meta['k']}")
    return load(cache)


def load(cache: Path) -> dict[int, Chain]:
    """The chains whose keys :func:`prepare` made in ``cache``."""
    chains = {}
    for k in K_RANGE:
        key = read_key_dir(cache / "keys" / location(k), location(k))
        chains[k] = Chain(k, chain_circuit(chain_length(k)), encoding.decode_verifying_key(key.verifier_key))
    return chains
