"""Every decoder that takes outside bytes, as a fuzz target with valid seeds.

Seeds are built here from the library itself (tiny keys, tiny ptau) and from
tests/fixtures, so no target depends on a network or on another test's state.
Targets for modules that are not there yet are skipped by name (see ``TARGETS``).
"""

from __future__ import annotations

import functools
import importlib.util
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.fuzz._harness import Target

REPO = Path(__file__).resolve().parents[2]
ZKIR_FIXTURES = REPO / "tests" / "fixtures" / "zkir"
ATTESTATION_TESTDATA = REPO / "tests" / "fixtures" / "attestation"


# --------------------------------------------------------------------------- shared seed material


@functools.cache
def _tiny_groth16() -> tuple[Any, Any, Any, list[int]]:
    """A 4-constraint circuit's proving key, a proof and its witness (setup from known secrets: test only)."""
    from teeprover.groth16 import prove, setup
    from teeprover.snarkjs.ptau import lagrange_params_from_secrets
    from tests.support.circuits import squaring_chain

    r1cs, z = squaring_chain(3, x=5)  # s0 = x; s_{i+1} = s_i^2 + i; out = s_3; public: out, x
    params = lagrange_params_from_secrets(r1cs.domain_size(), tau=77, alpha=5, beta=9)
    pk = setup.setup(r1cs, params, setup.ToxicWaste(delta=13))
    proof = prove.prove(pk, z, 3, 4)
    return r1cs, pk, proof, z


def _zkir_json_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(ZKIR_FIXTURES.glob("*.zkir.json"))]


def _preimage_json_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(ZKIR_FIXTURES.glob("*.preimage.json"))]


# --------------------------------------------------------------------------- decoders and seeds


def _preimage_cbor_seeds() -> list[bytes]:
    from teeprover.zkir import load_preimage

    return [load_preimage(s).to_cbor() for s in _preimage_json_seeds()]


def _decode_preimage_cbor(data: bytes) -> Any:
    from teeprover.zkir import ProofPreimage

    return ProofPreimage.from_cbor(data)


def _decode_preimage_any(data: bytes) -> Any:
    from teeprover.zkir import load_preimage

    return load_preimage(data)


def _preimage_midnight_seeds() -> list[bytes]:
    # Midnight's form: real ledger-v8 wallet preimages kept with the corpus, and our JSON seeds re-encoded.
    import json

    from teeprover.zkir import load_preimage

    wallet = json.loads((REPO / "tests" / "fixtures" / "midnight" / "preimages" / "wallet.json").read_text())
    return ([bytes.fromhex(e["preimage"]) for e in wallet.values()]
            + [load_preimage(s).to_midnight(versioned=i % 2 == 1) for i, s in enumerate(_preimage_json_seeds())])


def _decode_preimage_midnight(data: bytes) -> Any:
    from teeprover.zkir import ProofPreimage

    return ProofPreimage.from_midnight(data)


def _key_material_seeds() -> list[bytes]:
    from teeprover.groth16 import encoding
    from teeprover.zkir import ProvingKeyMaterial

    _, pk, _, _ = _tiny_groth16()
    circuit = _zkir_json_seeds()[0]
    full = ProvingKeyMaterial(encoding.encode_proving_key(pk), encoding.encode_verifying_key(pk.vk), circuit)
    return [full.to_cbor(), ProvingKeyMaterial(b"", b"", b"").to_cbor()]


def _decode_key_material(data: bytes) -> Any:
    from teeprover.zkir import ProvingKeyMaterial

    return ProvingKeyMaterial.from_cbor(data)


def _prove_request_seeds() -> list[bytes]:
    from teeprover.zkir import ProofPreimage, ProveRequest, ProvingKeyMaterial, load_preimage

    pre = load_preimage(_preimage_json_seeds()[0])
    km = ProvingKeyMaterial.from_cbor(_key_material_seeds()[1])
    return [ProveRequest(pre).to_cbor(), ProveRequest(pre, km, 42).to_cbor(),
            ProveRequest(ProofPreimage(inputs=(1, 2))).to_cbor()]


def _decode_prove_request(data: bytes) -> Any:
    from teeprover.zkir import ProveRequest

    return ProveRequest.from_cbor(data)


def _zkir_cbor_seeds() -> list[bytes]:
    from teeprover.zkir import load_circuit

    return [load_circuit(s).to_cbor() for s in _zkir_json_seeds()]


def _decode_zkir(data: bytes) -> Any:
    from teeprover.zkir import load_circuit

    return load_circuit(data)


def _decode_zkir_and_k(data: bytes) -> Any:
    # A circuit that parses is next compiled for its k (/k); that step sees outside input too.
    from teeprover.zkir import circuit_k, load_circuit

    return circuit_k(load_circuit(data))


def _proof_seeds() -> list[bytes]:
    from teeprover.groth16 import encoding

    return [encoding.encode_proof(_tiny_groth16()[2])]


def _vk_seeds() -> list[bytes]:
    from teeprover.groth16 import encoding

    return [encoding.encode_verifying_key(_tiny_groth16()[1].vk)]


def _pk_seeds() -> list[bytes]:
    from teeprover.groth16 import encoding

    return [encoding.encode_proving_key(_tiny_groth16()[1])]


def _decode_proof(data: bytes) -> Any:
    from teeprover.groth16 import encoding

    return encoding.decode_proof(data)


def _decode_vk(data: bytes) -> Any:
    from teeprover.groth16 import encoding

    return encoding.decode_verifying_key(data)


def _decode_pk(data: bytes) -> Any:
    from teeprover.groth16 import encoding

    return encoding.decode_proving_key(data)


@functools.cache
def _ptau_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="teeprover-fuzz-ptau-"))


def _ptau_seeds() -> list[bytes]:
    from teeprover.snarkjs import ptau

    path = _ptau_dir() / "seed.ptau"
    ptau.generate_dev_ptau(2, path, random.Random(7))
    return [path.read_bytes()]


def _decode_ptau(data: bytes) -> Any:
    # read_ptau takes a path: the bytes go through a real file, then every section decoder runs.
    from teeprover.snarkjs import ptau

    path = _ptau_dir() / "input.ptau"
    path.write_bytes(data)
    parsed = ptau.read_ptau(path)
    for n in (1, 2, 4):
        parsed.lagrange_params(n)
    return parsed


def _r1cs_seeds() -> list[bytes]:
    from teeprover.snarkjs import r1cs

    return [r1cs.r1cs_to_bytes(_tiny_groth16()[0])]


def _decode_r1cs(data: bytes) -> Any:
    from teeprover.snarkjs import r1cs

    return r1cs.parse_r1cs(data)


def _wtns_seeds() -> list[bytes]:
    from teeprover.snarkjs import wtns

    return [wtns.wtns_to_bytes(_tiny_groth16()[3]), wtns.wtns_to_bytes([1])]


def _decode_wtns(data: bytes) -> Any:
    from teeprover.snarkjs import wtns

    return wtns.parse_wtns(data)


def _zkey_seeds() -> list[bytes]:
    from teeprover.snarkjs import zkey

    return [zkey.zkey_to_bytes(_tiny_groth16()[1])]


def _decode_zkey(data: bytes) -> Any:
    from teeprover.snarkjs import zkey

    return zkey.parse_zkey(data, check_subgroup=True)


# --------------------------------------------------------------------------- attestation


@functools.cache
def _attestation_samples() -> dict[str, tuple[bytes, Any, Any]]:
    """platform → (evidence, now, roots): the same real samples the attestation tests use."""
    from tests.unit import test_attestation_mutations as m

    out = {}
    for platform, (make, when, _) in sorted(m.SAMPLES.items()):
        roots = m.azure_roots() if platform == "azure" else None
        out[platform] = (make(), when, roots)
    return out


def _attestation_target(platform: str) -> Target:
    def decode(data: bytes) -> Any:
        from teeprover.attestation import Result, verify

        _, now, roots = _attestation_samples()[platform]
        result = verify(data, platform=platform, now=now, roots=roots, allow_debug=True)
        # verify() fails closed with a named step; "internal" means an unexpected exception inside.
        if not isinstance(result, Result) or result.failed_step == "internal":
            raise AssertionError(f"verify() on mutated {platform} evidence: {result!r}")
        if not result.ok and not (result.failed_step and result.message):
            raise AssertionError(f"failed result without a named step: {result!r}")
        return result

    return Target(f"attestation-{platform}", decode, lambda: [_attestation_samples()[platform][0]],
                  max_size=2048, deadline_s=20.0,
                  label=lambda r: "valid" if r.ok else f"failed:{r.failed_step}")


# --------------------------------------------------------------------------- the registry


def _tags() -> dict[str, int]:
    from teeprover.groth16 import encoding
    from teeprover.zkir import TAG_PROOF_PREIMAGE_V1, TAG_PROVING_KEY_MATERIAL_V1, TAG_ZKIR_V2

    return {"preimage": TAG_PROOF_PREIMAGE_V1, "key_material": TAG_PROVING_KEY_MATERIAL_V1, "zkir": TAG_ZKIR_V2,
            "proof": encoding.TAG_PROOF, "vk": encoding.TAG_VERIFYING_KEY, "pk": encoding.TAG_PROVING_KEY}


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def all_targets() -> list[Target]:
    t = _tags()
    targets = [
        Target("preimage-cbor", _decode_preimage_cbor, _preimage_cbor_seeds, (t["preimage"],)),
        Target("preimage-any", _decode_preimage_any, lambda: _preimage_json_seeds() + _preimage_cbor_seeds(),
               (t["preimage"],)),
        Target("preimage-midnight", _decode_preimage_midnight, _preimage_midnight_seeds),
        Target("key-material-cbor", _decode_key_material, _key_material_seeds, (t["key_material"],)),
        Target("prove-request-cbor", _decode_prove_request, _prove_request_seeds,
               (t["preimage"], t["key_material"])),
        Target("zkir-json", _decode_zkir, _zkir_json_seeds),
        Target("zkir-cbor", _decode_zkir, _zkir_cbor_seeds, (t["zkir"],)),
        Target("zkir-k", _decode_zkir_and_k, lambda: _zkir_json_seeds() + _zkir_cbor_seeds(), (t["zkir"],)),
        Target("groth16-proof-cbor", _decode_proof, _proof_seeds, (t["proof"],)),
        Target("groth16-vk-cbor", _decode_vk, _vk_seeds, (t["vk"],)),
        Target("groth16-pk-cbor", _decode_pk, _pk_seeds, (t["pk"], t["vk"])),
        Target("snarkjs-ptau", _decode_ptau, _ptau_seeds),
    ]
    optional: list[tuple[str, str, Callable[[bytes], Any], Callable[[], Sequence[bytes]]]] = [
        ("snarkjs-r1cs", "teeprover.snarkjs.r1cs", _decode_r1cs, _r1cs_seeds),
        ("snarkjs-wtns", "teeprover.snarkjs.wtns", _decode_wtns, _wtns_seeds),
        ("snarkjs-zkey", "teeprover.snarkjs.zkey", _decode_zkey, _zkey_seeds),
    ]
    for name, module, decode, seeds in optional:
        if _module_exists(module):
            targets.append(Target(name, decode, seeds))
    targets += [_attestation_target(p) for p in ("aws-nitro", "azure", "gcp-vtpm", "sev-snp", "tdx")]
    return targets


TARGET_NAMES = [
    "preimage-cbor", "preimage-any", "preimage-midnight", "key-material-cbor", "prove-request-cbor", "zkir-json",
    "zkir-cbor", "zkir-k",
    "groth16-proof-cbor", "groth16-vk-cbor", "groth16-pk-cbor", "snarkjs-ptau", "snarkjs-r1cs", "snarkjs-wtns",
    "snarkjs-zkey", "attestation-aws-nitro", "attestation-azure", "attestation-gcp-vtpm", "attestation-sev-snp",
    "attestation-tdx",
]
