"""Groth16 engine: every valid proof verifies, and every kind of tampering does not."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import cbor2
import pytest

from teeprover import curve
from teeprover.curve import R
from teeprover.errors import CircuitError, InvalidInput, MalformedEncoding
from teeprover.groth16 import encoding, prove, setup, verify
from teeprover.groth16.types import Proof
from teeprover.snarkjs import export
from teeprover.snarkjs.ptau import lagrange_params_from_secrets
from tests.support import npm
from tests.support.circuits import squaring_chain


@pytest.fixture(scope="module")
def small():
    r1cs, z = squaring_chain(1000)  # k = 10
    r1cs.check_witness(z)
    params = lagrange_params_from_secrets(r1cs.domain_size(), tau=0x1234567, alpha=0xA1FA, beta=0xBE7A)
    pk = setup.setup(r1cs, params, setup.ToxicWaste(delta=0xDE17A))
    return r1cs, z, pk


@pytest.fixture(scope="module")
def tiny():
    r1cs, z = squaring_chain(3, x=5)  # n = 8
    params = lagrange_params_from_secrets(r1cs.domain_size(), tau=77, alpha=5, beta=9)
    pk = setup.setup(r1cs, params, setup.ToxicWaste(delta=13))
    return r1cs, z, pk


def public(z: list[int], pk) -> list[int]:
    return z[1:1 + pk.num_public]


@pytest.mark.parametrize("seed", range(3))
def test_valid_proof_verifies(small, seed: int) -> None:
    _, z, pk = small
    rng = random.Random(seed)
    proof = prove.prove(pk, z, rng.randrange(R), rng.randrange(R))
    assert verify.verify(pk.vk, public(z, pk), proof)


def test_random_proofs_verify_and_differ(small) -> None:
    _, z, pk = small
    p1, p2 = prove.create_random_proof(pk, z), prove.create_random_proof(pk, z)
    assert verify.verify(pk.vk, public(z, pk), p1) and verify.verify(pk.vk, public(z, pk), p2)
    assert p1 != p2


def test_verify_rejects_wrong_public_input(small) -> None:
    _, z, pk = small
    proof = prove.prove(pk, z, 1, 2)
    for i in range(pk.num_public):
        bad = public(z, pk)
        bad[i] = (bad[i] + 1) % R
        assert verify.verify(pk.vk, bad, proof) is False


def test_verify_rejects_swapped_a_and_c(small) -> None:
    _, z, pk = small
    proof = prove.prove(pk, z, 1, 2)
    assert verify.verify(pk.vk, public(z, pk), Proof(a=proof.c, b=proof.b, c=proof.a)) is False


def test_verify_rejects_unsatisfying_witness(small) -> None:
    _, z, pk = small
    bad = list(z)
    bad[10] = (bad[10] + 1) % R
    assert verify.verify(pk.vk, public(z, pk), prove.prove(pk, bad, 1, 2)) is False


def test_verify_rejects_flipped_byte(small) -> None:
    _, z, pk = small
    data = encoding.encode_proof(prove.prove(pk, z, 3, 4))
    outcomes: set[bool | str] = set()
    for pos in (len(data) - 5, len(data) - 100, len(data) - 150):
        flipped = bytearray(data)
        flipped[pos] ^= 0x01
        try:
            outcomes.add(verify.verify(pk.vk, public(z, pk), encoding.decode_proof(bytes(flipped))))
        except MalformedEncoding:
            outcomes.add("malformed")
    assert True not in outcomes


def test_wrong_number_of_public_inputs_raises(small) -> None:
    _, z, pk = small
    proof = prove.prove(pk, z, 1, 2)
    with pytest.raises(InvalidInput):
        verify.verify(pk.vk, public(z, pk)[:-1], proof)
    with pytest.raises(InvalidInput):
        verify.verify(pk.vk, public(z, pk) + [0], proof)
    with pytest.raises(InvalidInput):
        verify.verify(pk.vk, [R] + public(z, pk)[1:], proof)


def test_prove_rejects_wrong_witness_length(small) -> None:
    _, z, pk = small
    with pytest.raises(InvalidInput):
        prove.prove(pk, z[:-1], 1, 2)


def test_known_answer_fixed_seeds_give_identical_proof_bytes(tiny) -> None:
    _, z, pk = tiny
    a = encoding.encode_proof(prove.prove(pk, z, 1111, 2222))
    b = encoding.encode_proof(prove.prove(pk, z, 1111, 2222))
    assert a == b
    assert hashlib.sha256(a).hexdigest() == KNOWN_PROOF_SHA256
    assert encoding.encode_proof(prove.prove(pk, z, 1111, 2223)) != a


KNOWN_PROOF_SHA256 = "3aa3b3f7bf41bc68896cf5021e52c4c5d9abc223220a8e425cc54cc861081c0c"


def test_small_proof_verifies_with_py_ecc_pairings(tiny) -> None:
    """An independent check: the Groth16 equation evaluated with py_ecc, not our curve adapter."""
    from py_ecc.bls.point_compression import decompress_G1, decompress_G2
    from py_ecc.optimized_bls12_381 import FQ12, add, final_exponentiate, multiply, neg, pairing

    _, z, pk = tiny
    proof = prove.prove(pk, z, 5, 6)

    def e1(p):
        return decompress_G1(int.from_bytes(curve.g1_to_bytes(p), "big"))

    def e2(p):
        b = curve.g2_to_bytes(p)
        return decompress_G2((int.from_bytes(b[:48], "big"), int.from_bytes(b[48:], "big")))

    vk = pk.vk
    acc = e1(vk.ic[0])
    for x, ic in zip(public(z, pk), vk.ic[1:], strict=True):
        acc = add(acc, multiply(e1(ic), x))

    def check(a, b, c) -> bool:
        f = (pairing(e2(b), neg(a), final_exponentiate=False)
             * pairing(e2(vk.beta_g2), e1(vk.alpha_g1), final_exponentiate=False)
             * pairing(e2(vk.gamma_g2), acc, final_exponentiate=False)
             * pairing(e2(vk.delta_g2), c, final_exponentiate=False))
        return final_exponentiate(f) == FQ12.one()

    assert check(e1(proof.a), proof.b, e1(proof.c))
    assert not check(e1(proof.c), proof.b, e1(proof.a))


# --- CBOR -----------------------------------------------------------------------

def test_cbor_round_trips_are_canonical(tiny) -> None:
    _, z, pk = tiny
    proof = prove.prove(pk, z, 1, 2)
    pb = encoding.encode_proof(proof)
    assert encoding.decode_proof(pb) == proof
    assert encoding.encode_proof(encoding.decode_proof(pb)) == pb
    vb = encoding.encode_verifying_key(pk.vk)
    assert encoding.decode_verifying_key(vb) == pk.vk
    kb = encoding.encode_proving_key(pk)
    pk2 = encoding.decode_proving_key(kb)
    assert encoding.encode_proving_key(pk2) == kb
    assert verify.verify(pk.vk, public(z, pk), prove.prove(pk2, z, 1, 2))
    assert cbor2.loads(pb).tag == encoding.TAG_PROOF
    assert cbor2.dumps(cbor2.loads(kb), canonical=True) == kb


def test_proving_key_fast_and_compressed_forms_decode_to_the_same_key(tiny) -> None:
    _, z, pk = tiny
    fast = encoding.encode_proving_key(pk)
    compact = encoding.encode_proving_key(pk, compressed=True)
    assert cbor2.loads(fast).tag == encoding.TAG_PROVING_KEY_XY and cbor2.loads(compact).tag == encoding.TAG_PROVING_KEY
    for data in (fast, compact):
        for check in (True, False):
            pk2 = encoding.decode_proving_key(data, check_subgroup=check)
            assert encoding.encode_proving_key(pk2) == fast
            assert encoding.encode_proving_key(pk2, compressed=True) == compact
    proof = prove.prove(encoding.decode_proving_key(fast, check_subgroup=False), z, 1111, 2222)
    assert hashlib.sha256(encoding.encode_proof(proof)).hexdigest() == KNOWN_PROOF_SHA256


def _replace_query_point(data: bytes, field: int, point: bytes) -> bytes:
    obj = cbor2.loads(data)
    body = list(obj.value)
    body[field] = point + body[field][len(point):]
    return cbor2.dumps(cbor2.CBORTag(obj.tag, body), canonical=True)


def test_fast_form_rejects_off_curve_point_even_when_trusted(tiny) -> None:
    _, _, pk = tiny
    x, y = curve.g1_to_affine(curve.g1_generator())  # type: ignore[misc]
    off = x.to_bytes(48, "little") + ((y + 1) % curve.P).to_bytes(48, "little")
    bad = _replace_query_point(encoding.encode_proving_key(pk), 8, off)  # a_query
    for check in (True, False):
        with pytest.raises(MalformedEncoding):
            encoding.decode_proving_key(bad, check_subgroup=check)


def test_fast_form_subgroup_check_catches_point_outside_g1(tiny) -> None:
    _, _, pk = tiny
    for x in range(1, 100):  # a curve point with a small x is not in the prime-order subgroup
        rhs = (x ** 3 + 4) % curve.P
        y = pow(rhs, (curve.P + 1) // 4, curve.P)
        if y * y % curve.P == rhs:
            break
    bad = _replace_query_point(encoding.encode_proving_key(pk), 12, x.to_bytes(48, "little") + y.to_bytes(48, "little"))
    with pytest.raises(MalformedEncoding):
        encoding.decode_proving_key(bad)
    encoding.decode_proving_key(bad, check_subgroup=False)  # trusted store: on the curve is all we check


def test_witness_with_zeros_proves_and_verifies() -> None:
    r1cs, z = squaring_chain(20, x=0)  # s0 = s1 = 0: zero scalars are skipped in the MSMs
    assert 0 in z[1:]
    params = lagrange_params_from_secrets(r1cs.domain_size(), tau=99, alpha=7, beta=11)
    pk = setup.setup(r1cs, params, setup.ToxicWaste(delta=17))
    proof = prove.prove(pk, z, 3, 4)
    assert verify.verify(pk.vk, public(z, pk), proof)
    bad = list(z)
    bad[3] = 5  # s1 = s0^2 + 0 should be 0
    assert not verify.verify(pk.vk, public(z, pk), prove.prove(pk, bad, 3, 4))


@pytest.mark.parametrize("bad", [
    b"", b"\xff", b"junk", cbor2.dumps([1, 2, 3]), cbor2.dumps(cbor2.CBORTag(encoding.TAG_PROOF, [2, b"", b"", b""])),
    cbor2.dumps(cbor2.CBORTag(encoding.TAG_VERIFYING_KEY, [1, b"", b"", b""])),
    cbor2.dumps(cbor2.CBORTag(encoding.TAG_PROOF, [1, b"\x00" * 48, b"\x00" * 96, b"\x00" * 48])),
])
def test_decoding_bad_bytes_raises(bad: bytes) -> None:
    with pytest.raises(MalformedEncoding):
        encoding.decode_proof(bad)
    with pytest.raises(MalformedEncoding):
        encoding.decode_verifying_key(bad)
    with pytest.raises(MalformedEncoding):
        encoding.decode_proving_key(bad)


def test_decoding_proof_with_wrong_tag_raises(tiny) -> None:
    _, z, pk = tiny
    with pytest.raises(MalformedEncoding):
        encoding.decode_proof(encoding.encode_verifying_key(pk.vk))


def test_truncated_proving_key_raises(tiny) -> None:
    _, _, pk = tiny
    kb = encoding.encode_proving_key(pk)
    with pytest.raises(MalformedEncoding):
        encoding.decode_proving_key(kb[:-10])


# --- snarkjs JSON ----------------------------------------------------------------

def test_json_export_round_trips(tiny) -> None:
    _, z, pk = tiny
    proof = prove.prove(pk, z, 1, 2)
    vk_text = export.verification_key_json(pk.vk)
    assert export.verification_key_json(export.verifying_key_from_json(vk_text)) == vk_text
    assert export.proof_from_json(export.proof_json(proof)) == proof
    assert export.public_from_json(export.public_json(public(z, pk))) == public(z, pk)
    with pytest.raises(MalformedEncoding):
        export.proof_from_json('{"pi_a": ["1", "2", "1"]}')


@pytest.mark.snarkjs
@pytest.mark.skipif(not npm.npm_available(), reason="node/npm not installed")
def test_snarkjs_verifies_exported_proof_and_rejects_wrong_input(small, tmp_path: Path) -> None:
    _, z, pk = small
    proof = prove.prove(pk, z, 123, 456)
    (tmp_path / "vk.json").write_text(export.verification_key_json(pk.vk))
    (tmp_path / "proof.json").write_text(export.proof_json(proof))
    (tmp_path / "public.json").write_text(export.public_json(public(z, pk)))
    ok = npm.snarkjs("groth16", "verify", str(tmp_path / "vk.json"), str(tmp_path / "public.json"),
                     str(tmp_path / "proof.json"))
    assert ok.returncode == 0 and "OK" in ok.stdout, ok.stdout + ok.stderr
    bad = public(z, pk)
    bad[0] = (bad[0] + 1) % R
    (tmp_path / "public.json").write_text(export.public_json(bad))
    no = npm.snarkjs("groth16", "verify", str(tmp_path / "vk.json"), str(tmp_path / "public.json"),
                     str(tmp_path / "proof.json"))
    assert no.returncode != 0 and "OK" not in no.stdout


def test_key_cache_is_bounded_in_bytes(small, tiny) -> None:
    from teeprover.proving import ProvingKeyCache

    big, little = encoding.encode_proving_key(small[2]), encoding.encode_proving_key(tiny[2])
    big_bytes = prove.key_memory(small[2])
    assert big_bytes > 1000 * 4 * 200 > prove.key_memory(tiny[2]) > 0  # ~200 B a G1 point, four per variable
    cache = ProvingKeyCache(capacity=4, max_bytes=big_bytes + prove.key_memory(tiny[2]) // 2)
    cache.get(little, trusted=True)
    cache.get(big, trusted=True)  # both do not fit: the older (tiny) key goes
    assert cache.bytes == big_bytes
    cache.get(big, trusted=True)
    assert (cache.hits, cache.misses) == (1, 2)
    cache.get(little, trusted=True)  # and now the big one goes
    assert cache.bytes == prove.key_memory(tiny[2])
    alone = ProvingKeyCache(max_bytes=big_bytes - 1)  # a key bigger than the bound is used, not kept
    assert alone.get(big, trusted=True).num_variables == small[2].num_variables
    assert alone.bytes == 0


def test_proof_memory_is_linear_in_the_domain() -> None:
    assert prove.proof_memory(1 << 20, 1 << 20) == 2 * prove.proof_memory(1 << 19, 1 << 19)
    assert prove.proof_memory(1 << 20, 1 << 20) > 5 * (1 << 20) * 32  # at least the witness map's five vectors


@pytest.mark.parametrize("chunk_points", [64, 1 << 18])
def test_streamed_proof_equals_the_in_memory_proof(small, tmp_path: Path, monkeypatch, chunk_points: int) -> None:
    """The key read a chunk at a time (.zkey file) gives the very proof the decoded key gives, and never
    holds more than ``_WORKERS + 1`` chunks at once (decoded and not yet multiplied)."""
    import threading

    from teeprover.snarkjs.zkey import ZkeyChunks, write_zkey

    r1cs, z, pk = small
    expected = prove.prove(pk, z, 1234, 5678)
    path = tmp_path / "k.zkey"
    write_zkey(path, pk)
    key = ZkeyChunks(path)
    alive = {"now": 0, "max": 0, "chunks": 0}
    lock = threading.Lock()
    chunks = key.chunks

    def tracked(name: str, points: int):
        for item in chunks(name, points):
            with lock:
                alive["now"] += 1
                alive["chunks"] += 1
                alive["max"] = max(alive["max"], alive["now"])
            yield item

    def done_with(msm):
        def run(points, scalars):
            try:
                return msm(points, scalars)
            finally:
                with lock:
                    alive["now"] -= 1
        return run

    key.chunks = tracked  # type: ignore[method-assign]
    monkeypatch.setattr(curve, "msm_g1", done_with(curve.msm_g1))
    monkeypatch.setattr(curve, "msm_g2", done_with(curve.msm_g2))
    got = prove.prove_streamed(key, curve.fr_vector_to_bytes(z), 1234, 5678, chunk_points=chunk_points)
    assert alive["now"] == 0  # every chunk was multiplied
    assert got == expected
    assert verify.verify(pk.vk, public(z, pk), got)
    if chunk_points == 64:
        assert alive["chunks"] > 50  # ~1000 points a query: many chunks
        assert alive["max"] <= prove._WORKERS + 1


def test_streamed_proof_rejects_a_bad_witness(small, tmp_path: Path) -> None:
    """Wrong length (ints or bytes), a 32-byte value not reduced, witness[0] != 1: refused before any MSM."""
    from teeprover.snarkjs.zkey import ZkeyChunks, write_zkey

    r1cs, z, pk = small
    write_zkey(tmp_path / "k.zkey", pk)
    key = ZkeyChunks(tmp_path / "k.zkey")
    with pytest.raises(InvalidInput):
        prove.prove_streamed(key, z[:-1], 1, 2)
    with pytest.raises(InvalidInput, match="witness has 999 values"):
        prove.prove_streamed(key, curve.fr_vector_to_bytes(z[:999]), 1, 2)
    unreduced = curve.fr_vector_to_bytes(z[:7]) + R.to_bytes(32, "little") + curve.fr_vector_to_bytes(z[8:])
    with pytest.raises(MalformedEncoding, match="witness: value 7 is not reduced"):
        prove.prove_streamed(key, unreduced, 1, 2)
    with pytest.raises(CircuitError, match="witness\\[0\\] must be 1"):
        prove.prove_streamed(key, curve.fr_vector_to_bytes([2, *z[1:]]), 1, 2)
    assert prove.prove_streamed(key, curve.fr_vector_to_bytes(z), 1, 2) == prove.prove(pk, z, 1, 2)


@pytest.mark.parametrize(("where", "query"), [(0.5, "B2"), (0.97, "H")])
def test_streamed_proof_of_a_key_with_a_corrupt_point_fails_cleanly(small, tmp_path: Path, where: float,
                                                                     query: str) -> None:
    """A .zkey damaged after it was written (one flipped byte inside a point) is refused while streaming, from
    the feeder thread (B2) or the caller's (H), as MalformedEncoding naming the query, and no MSM is left running."""
    import threading

    from teeprover.snarkjs.zkey import ZkeyChunks, write_zkey

    _, z, pk = small
    path = tmp_path / "k.zkey"
    write_zkey(path, pk)
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0xFF
    path.write_bytes(data)
    with pytest.raises(MalformedEncoding, match=f"zkey: {query}: .* not on the curve or not in the subgroup"):
        prove.prove_streamed(ZkeyChunks(path), z, 1, 2, chunk_points=64)
    assert not [t for t in threading.enumerate() if t.name == "msm-feeder"]


def test_prove_refuses_a_witness_without_the_constant_one_and_scalars_outside_the_field(small) -> None:
    _, z, pk = small
    with pytest.raises(InvalidInput, match="witness has 999 values, the key expects"):
        prove.prove(pk, z[:999], 1, 2)
    with pytest.raises(InvalidInput, match="witness\\[0\\] must be 1"):
        prove.prove(pk, [2, *z[1:]], 1, 2)
    with pytest.raises(InvalidInput, match="r and s must be field elements"):
        prove.prove(pk, z, R, 2)
    with pytest.raises(InvalidInput, match="r and s must be field elements"):
        prove.prove(pk, z, 1, -1)
    # A witness given as another sequence, or with values to reduce, is the same witness.
    shifted = tuple(x + R for x in z)
    assert prove.prove(pk, shifted, 1, 2) == prove.prove(pk, z, 1, 2)
