"""snarkjs JSON readers and writers (teeprover/snarkjs/export.py): what `teeprover verify --vk x.json` accepts.

Every yes has a no: a file snarkjs would write reads back to the same points, and each way a hand-edited or
foreign file can be wrong is refused as MalformedEncoding naming what is wrong.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from teeprover import curve
from teeprover.errors import MalformedEncoding
from teeprover.groth16.types import Proof, VerifyingKey
from teeprover.snarkjs import export

G1, G2 = curve.g1_generator(), curve.g2_generator()
VK = VerifyingKey(alpha_g1=curve.g1_mul(G1, 3), beta_g2=curve.g2_mul(G2, 5), gamma_g2=G2,
                  delta_g2=curve.g2_mul(G2, 7), ic=(curve.g1_mul(G1, 11), curve.g1_identity()))
PROOF = Proof(a=curve.g1_mul(G1, 13), b=curve.g2_identity(), c=G1)


def _vk_doc(**changes: Any) -> str:
    doc = json.loads(export.verification_key_json(VK))
    doc.update(changes)
    return json.dumps(doc)


def _proof_doc(**changes: Any) -> str:
    doc = json.loads(export.proof_json(PROOF))
    doc.update(changes)
    return json.dumps(doc)


def test_identity_points_are_written_as_snarkjs_writes_them_and_read_back() -> None:
    vk = json.loads(export.verification_key_json(VK))
    assert vk["IC"][1] == ["0", "1", "0"] and vk["nPublic"] == 1
    assert vk["vk_gamma_2"][2] == ["1", "0"] and vk["vk_alpha_1"][2] == "1"
    proof = json.loads(export.proof_json(PROOF))
    assert proof["pi_b"] == [["0", "0"], ["1", "0"], ["0", "0"]]
    assert export.verifying_key_from_json(export.verification_key_json(VK)) == VK
    assert export.proof_from_json(export.proof_json(PROOF).encode()) == PROOF


def test_proof_without_protocol_and_curve_is_read_as_groth16_bls12381() -> None:
    doc = json.loads(export.proof_json(PROOF))
    del doc["protocol"], doc["curve"]
    assert export.proof_from_json(json.dumps(doc)) == PROOF


def test_public_json_reduces_mod_r_and_reads_back() -> None:
    text = export.public_json([1, curve.R + 2, 0])
    assert json.loads(text) == ["1", "2", "0"]
    assert export.public_from_json(text) == [1, 2, 0]


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (_vk_doc(protocol="plonk"), "not a groth16 bls12381 verification key"),
    (_vk_doc(curve="bn128"), "not a groth16 bls12381 verification key"),
    (_vk_doc(nPublic=2), "nPublic does not match IC"),
    (_vk_doc(IC=[], nPublic=-1), "nPublic does not match IC"),
    (json.dumps({"protocol": "groth16", "curve": "bls12381"}), "verification key JSON lacks a field"),
    ("[]", "verification key JSON lacks a field"),
    (_vk_doc(vk_alpha_1=["1", "2"]), r"G1 point must be \[x, y, z\]"),
    (_vk_doc(vk_alpha_1="1,2,1"), r"G1 point must be \[x, y, z\]"),
    (_vk_doc(vk_alpha_1=["1", "2", "2"]), r"G1 point must be affine \(z = 1\)"),
    (_vk_doc(vk_alpha_1=["1", "2", "1"]), "G1 point is not on the curve"),
    (_vk_doc(vk_alpha_1=["-1", "2", "1"]), "expected a decimal string"),
    (_vk_doc(vk_alpha_1=[1, 2, 1]), "expected a decimal string"),
    (_vk_doc(vk_alpha_1=["0x1", "2", "1"]), "expected a decimal string"),
    (_vk_doc(vk_beta_2=[["1", "0"], ["1", "0"]]), r"G2 point must be \[\[x0, x1\], \[y0, y1\], \[z0, z1\]\]"),
    (_vk_doc(vk_beta_2=[["1", "0"], ["1", "0"], ["1"]]), r"G2 point must be \[\[x0, x1\]"),
    (_vk_doc(vk_beta_2=[["1", "0"], ["1", "0"], ["2", "0"]]), r"G2 point must be affine \(z = 1\)"),
    (_vk_doc(vk_beta_2=[["1", "0"], ["1", "0"], ["1", "0"]]), "G2 point is not on the curve"),
    (_vk_doc(vk_delta_2=[[str(curve.P), "0"], ["1", "0"], ["1", "0"]]), "G2 coordinate out of range"),
])
def test_bad_verification_key_json_is_malformed_with_the_reason(text: str | bytes, message: str) -> None:
    with pytest.raises(MalformedEncoding, match=message):
        export.verifying_key_from_json(text)


@pytest.mark.parametrize(("text", "message"), [
    (_proof_doc(protocol="fflonk"), "not a groth16 bls12381 proof"),
    (_proof_doc(curve="bn128"), "not a groth16 bls12381 proof"),
    (json.dumps({"pi_a": ["1", "2", "1"]}), "G1 point is not on the curve"),
    (json.dumps({"pi_b": [], "pi_c": []}), "proof JSON lacks a field"),
    ("[1, 2, 3]", "proof JSON lacks a field"),  # a list has no .get: refused, not an AttributeError
    (_proof_doc(pi_c=None), r"G1 point must be \[x, y, z\]"),
    ("", "not valid JSON"),
])
def test_bad_proof_json_is_malformed_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(MalformedEncoding, match=message):
        export.proof_from_json(text)


def test_a_point_off_the_subgroup_is_refused() -> None:
    # (x, y) on y^2 = x^3 + 4 but outside the prime-order subgroup: the curve library must refuse it.
    x = next(x for x in range(1, 50) if pow((x**3 + 4) % curve.P, (curve.P - 1) // 2, curve.P) == 1)
    y = pow((x**3 + 4) % curve.P, (curve.P + 1) // 4, curve.P)  # P = 3 (mod 4)
    with pytest.raises(MalformedEncoding, match="not on the curve or not in G1"):
        export.proof_from_json(_proof_doc(pi_a=[str(x), str(y), "1"]))


@pytest.mark.parametrize(("text", "message"), [
    ('{"0": "1"}', "public.json must be an array"),
    ('["1", 2]', "expected a decimal string"),
    ('["1", "-2"]', "expected a decimal string"),
    ("[1", "not valid JSON"),
])
def test_bad_public_json_is_malformed_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(MalformedEncoding, match=message):
        export.public_from_json(text)
