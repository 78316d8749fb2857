"""ProofPreimage / ProvingKeyMaterial / ProveRequest codecs, and decoder fuzzing."""

from __future__ import annotations

import json

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teeprover.errors import CircuitError, MalformedEncoding, PayloadTooLarge
from teeprover.r1cs import R
from teeprover.zkir import (
    TAG_PROOF_PREIMAGE_V1,
    ProofPreimage,
    ProveRequest,
    ProvingKeyMaterial,
    compile_circuit,
    generate_witness,
    load_circuit,
    load_preimage,
)
from tests.unit._zkir_helpers import circuit

PRE = ProofPreimage(inputs=(1, R - 1), private_transcript=(2,), public_transcript_inputs=(3, 4),
                    public_transcript_outputs=(), binding_input=5, communications_commitment=(6, 7),
                    key_location="builtin/zswap/spend")
DOMAIN = (MalformedEncoding, PayloadTooLarge)
ZKIR_DOMAIN = (MalformedEncoding, PayloadTooLarge, CircuitError)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_preimage_round_trips_through_cbor_and_json():
    assert ProofPreimage.from_cbor(PRE.to_cbor()) == PRE
    assert ProofPreimage.from_json(PRE.to_json()) == PRE
    assert load_preimage(PRE.to_cbor()) == load_preimage(PRE.to_json()) == PRE


def test_preimage_cbor_is_deterministic_tagged_and_little_endian():
    data = PRE.to_cbor()
    assert data == cbor2.dumps(cbor2.loads(data), canonical=True)
    obj = cbor2.loads(data)
    assert obj.tag == TAG_PROOF_PREIMAGE_V1
    assert obj.value["binding_input"] == (5).to_bytes(32, "little")


def test_json_field_elements_are_decimal_strings():
    obj = json.loads(PRE.to_json())
    assert obj["inputs"] == ["1", str(R - 1)] and obj["version"] == 1


def test_prove_request_round_trips_and_overrides_the_binding_input():
    req = ProveRequest(PRE, ProvingKeyMaterial(b"pk", b"vk", b"ir"), 99)
    back = ProveRequest.from_cbor(req.to_cbor())
    assert back == req and back.effective_preimage().binding_input == 99
    bare = ProveRequest(PRE)
    assert ProveRequest.from_cbor(bare.to_cbor()).effective_preimage() == PRE


@pytest.mark.parametrize("mutate", [
    lambda m: m.pop("inputs"),
    lambda m: m.update(extra=1),
    lambda m: m.update(binding_input=R.to_bytes(32, "little")),   # not reduced
    lambda m: m.update(binding_input=b"\x00" * 31),               # wrong length
    lambda m: m.update(inputs=[5]),                                # not bytes
    lambda m: m.update(communications_commitment=[b"\x00" * 32]),
    lambda m: m.update(key_location=b"x"),
    lambda m: m.update(key_location="a\nb"),
])
def test_malformed_preimages_are_refused(mutate):
    obj = cbor2.loads(PRE.to_cbor())
    m = dict(obj.value)
    mutate(m)
    with pytest.raises(MalformedEncoding):
        ProofPreimage.from_cbor(cbor2.dumps(cbor2.CBORTag(obj.tag, m)))


@pytest.mark.parametrize("data", [
    b"", b"\x00", cbor2.dumps({"inputs": []}), cbor2.dumps(cbor2.CBORTag(0x7E000002, {})),
    PRE.to_cbor() + b"\x00", b"\x9f\xff",
])
def test_garbage_preimage_bytes_are_malformed(data):
    with pytest.raises(MalformedEncoding):
        ProofPreimage.from_cbor(data)


def test_preimage_size_limit():
    with pytest.raises(PayloadTooLarge):
        ProofPreimage.from_cbor(PRE.to_cbor(), max_bytes=16)


@pytest.mark.parametrize("value", ["-1", "1.0", "0x10", str(R), 1.5, True, None, "", "１"])
def test_json_field_elements_must_be_canonical_decimals(value):
    obj = json.loads(PRE.to_json())
    obj["binding_input"] = value
    with pytest.raises(MalformedEncoding):
        ProofPreimage.from_json(json.dumps(obj).encode())


# ------------------------------------------------------------------ fuzzing: only domain errors escape

def _mutations(data: bytes):
    return st.lists(st.tuples(st.integers(0, max(0, len(data) - 1)), st.integers(0, 255)), min_size=1, max_size=4)


def _apply(data: bytes, muts) -> bytes:
    b = bytearray(data)
    for pos, val in muts:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


@FUZZ
@given(st.binary(max_size=300))
def test_preimage_decoder_on_random_bytes_raises_only_domain_errors(data):
    try:
        load_preimage(data)
    except DOMAIN:
        pass


@FUZZ
@given(_mutations(PRE.to_cbor()))
def test_preimage_decoder_on_mutated_cbor_raises_only_domain_errors(muts):
    try:
        ProofPreimage.from_cbor(_apply(PRE.to_cbor(), muts))
    except DOMAIN:
        pass


@FUZZ
@given(_mutations(ProveRequest(PRE, ProvingKeyMaterial(b"p", b"v", b"i"), 3).to_cbor()))
def test_prove_request_decoder_on_mutated_cbor_raises_only_domain_errors(muts):
    try:
        ProveRequest.from_cbor(_apply(ProveRequest(PRE, ProvingKeyMaterial(b"p", b"v", b"i"), 3).to_cbor(), muts))
    except DOMAIN:
        pass


@FUZZ
@given(_mutations(PRE.to_json()))
def test_preimage_decoder_on_mutated_json_raises_only_domain_errors(muts):
    try:
        load_preimage(_apply(PRE.to_json(), muts))
    except DOMAIN:
        pass


_ZKIR = circuit(3, [{"op": "add", "a": 0, "b": 1}, {"op": "less_than", "a": 0, "b": 1, "bits": 8},
                    {"op": "load_imm", "imm": "-0a"}, {"op": "public_input", "guard": 2},
                    {"op": "declare_pub_input", "var": 3}, {"op": "pi_skip", "guard": 2, "count": 1}])


@FUZZ
@given(st.binary(max_size=300))
def test_zkir_decoder_on_random_bytes_raises_only_domain_errors(data):
    try:
        load_circuit(data)
    except ZKIR_DOMAIN:
        pass


@FUZZ
@given(st.sampled_from([_ZKIR.to_json(), _ZKIR.to_cbor()]).flatmap(lambda d: st.tuples(st.just(d), _mutations(d))))
def test_zkir_decoder_on_mutated_encodings_raises_only_domain_errors(case):
    data, muts = case
    try:
        c = load_circuit(_apply(data, muts))
    except ZKIR_DOMAIN:
        return
    # whatever parses must compile and run (or fail with a domain error), never crash
    try:
        compiled = compile_circuit(c)
        generate_witness(compiled, ProofPreimage(inputs=(1,) * c.num_inputs))
    except ZKIR_DOMAIN:
        pass
