"""A circuit of our own mixing Midnight's hash and curve instructions, proved through REST, checked by snarkjs.

The circuit uses ``transient_hash``, ``hash_to_curve``, ``ec_mul_generator``, ``ec_mul``, ``ec_add`` and the
communications commitment (k = 13; ``persistent_hash`` is proved through REST by the zswap output test);
every value the preimage's transcript expects (the hash, the points, the commitment) is computed by
Midnight's own runtime
(``@midnight-ntwrk/onchain-runtime-v2``), not by us.  The keys are held by the server (the shared test
stack's key store); the wallet sends only the preimage.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from teeprover import zkir
from teeprover.groth16 import encoding
from teeprover.groth16.verify import verify
from teeprover.keysetup import ensure_keys
from teeprover.keystore import read_key_dir
from teeprover.snarkjs.export import proof_json, public_json
from tests.support import npm
from tests.support.midnight import Big, MidnightOracle
from tests.support.stack import SHARED_CACHE, Stack

pytestmark = pytest.mark.e2e
LOCATION = "test/midnight-mixed"

CIRCUIT = {
    "version": {"major": 2, "minor": 0}, "num_inputs": 3, "do_communications_commitment": True,
    "instructions": [
        {"op": "transient_hash", "inputs": [0, 1]},                              # 3
        {"op": "hash_to_curve", "inputs": [0, 1]},                               # 4, 5
        {"op": "ec_mul_generator", "scalar": 2},                                 # 6, 7
        {"op": "ec_mul", "a_x": 4, "a_y": 5, "scalar": 2},                       # 8, 9
        {"op": "ec_add", "a_x": 6, "a_y": 7, "b_x": 8, "b_y": 9},                # 10, 11
        {"op": "declare_pub_input", "var": 3},
        {"op": "declare_pub_input", "var": 10},
        {"op": "declare_pub_input", "var": 11},
        {"op": "pi_skip", "guard": None, "count": 3},
        {"op": "output", "var": 3},
        {"op": "output", "var": 10},
    ],
}

# Midnight computes every expected value: the hash, the point, the commitment.
_EXPECTED_JS = """
const v = (x) => onchain.bigIntToValue(x);
const cells = (value) => value.map((b) => onchain.valueToBigInt([b]));
const [a, b, s, rand] = args;
const F = {tag: 'atom', value: {tag: 'field'}};
const h = onchain.valueToBigInt(onchain.transientHash([F, F], [...v(a), ...v(b)]));
const htc = onchain.hashToCurve([F, F], [...v(a), ...v(b)]);
const sum = onchain.ecAdd(onchain.ecMulGenerator(v(s)), onchain.ecMul(htc, v(s)));
const [x, y] = cells(sum);
const opened = [...v(a), ...v(b), ...v(s), ...v(h), ...v(x)];  // the inputs, then the outputs
const comm = onchain.valueToBigInt(onchain.transientCommit([F, F, F, F, F], opened, v(rand)));
return [h, x, y, comm];
"""


def test_mixed_midnight_ops_prove_through_rest_and_snarkjs_accepts(
        http: httpx.Client, stack: Stack, midnight: MidnightOracle, tmp_path: Path) -> None:
    a, b, s, rand = 12345678901234567890, 0x0102030405, 2**200 + 7, 424242
    h, x, y, comm = midnight.run(_EXPECTED_JS, Big(a), Big(b), Big(s), Big(rand))
    circuit_bytes = json.dumps(CIRCUIT).encode()
    keys = SHARED_CACHE / "keys" / LOCATION
    # The shared stack makes dev parameters for k = 10, 11 only: this circuit's k = 13 ones are made here once.
    ensure_keys(circuit_bytes, keys, cache=SHARED_CACHE, dev_params=True)
    key_files = read_key_dir(keys, LOCATION)
    preimage = zkir.ProofPreimage(inputs=(a, b, s), public_transcript_inputs=(h, x, y),
                                  binding_input=77, communications_commitment=(comm, rand), key_location=LOCATION)
    headers = {"x-api-key": stack.api_key or "", "content-type": "application/cbor"}
    reply = http.post("/prove", content=zkir.ProveRequest(preimage).to_cbor(), headers=headers)
    assert reply.status_code == 200, reply.text
    proof = encoding.decode_proof(reply.content)
    vk = encoding.decode_verifying_key(key_files.verifier_key)
    public = [77, comm, h, x, y]  # binding input, commitment, then the declared inputs
    assert verify(vk, public, proof)
    assert not verify(vk, [77, comm + 1, *public[2:]], proof)
    (tmp_path / "proof.json").write_text(proof_json(proof))
    (tmp_path / "public.json").write_text(public_json(public))
    (tmp_path / "vk.json").write_bytes((keys / "verification_key.json").read_bytes())
    out = npm.snarkjs("groth16", "verify", str(tmp_path / "vk.json"), str(tmp_path / "public.json"),
                      str(tmp_path / "proof.json"))
    assert out.returncode == 0 and "OK" in out.stdout, out.stdout + out.stderr

    # A transcript expecting another point is refused, naming the pi_skip; so is a wrong commitment.
    wrong = zkir.ProofPreimage(inputs=(a, b, s), public_transcript_inputs=(h, x, y + 1),
                               binding_input=77, communications_commitment=(comm, rand), key_location=LOCATION)
    refused = http.post("/prove", content=zkir.ProveRequest(wrong).to_cbor(), headers=headers)
    assert refused.status_code == 400 and "pi_skip" in refused.json()["message"]
    forged = zkir.ProofPreimage(inputs=(a, b, s), public_transcript_inputs=(h, x, y),
                                binding_input=77, communications_commitment=(comm + 1, rand), key_location=LOCATION)
    refused = http.post("/prove", content=zkir.ProveRequest(forged).to_cbor(), headers=headers)
    assert refused.status_code == 400 and "ommitment" in refused.json()["message"]
