"""snarkjs JSON: ``verification_key.json``, ``proof.json``, ``public.json``.

Written exactly as snarkjs 0.7 writes them (``bfj.write(..., {space: 1})``, the
same as ``JSON.stringify(obj, null, 1)``: one-space indentation, no trailing
newline), key order as in snarkjs's ``zkey export verificationkey`` and
``groth16 prove``, coordinates as decimal strings, affine points with the
projective ``"1"`` (G1) / ``["1", "0"]`` (G2) third coordinate.

The readers accept the same shapes (for ``teeprover verify --vk x.json``);
malformed input raises :class:`~teeprover.errors.MalformedEncoding`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from teeprover import curve
from teeprover.curve import R
from teeprover.errors import MalformedEncoding
from teeprover.groth16.types import Proof, VerifyingKey

CURVE_NAME = "bls12381"

_GT_RE = re.compile(r"QuadExtField\((\d+) \+ (\d+) \* u\)")


def _g1_obj(p: curve.G1) -> list[str]:
    xy = curve.g1_to_affine(p)
    if xy is None:  # snarkjs writes the identity as (0, 1, 0)
        return ["0", "1", "0"]
    return [str(xy[0]), str(xy[1]), "1"]


def _g2_obj(p: curve.G2) -> list[list[str]]:
    xy = curve.g2_to_affine(p)
    if xy is None:
        return [["0", "0"], ["1", "0"], ["0", "0"]]
    (x0, x1), (y0, y1) = xy
    return [[str(x0), str(x1)], [str(y0), str(y1)], ["1", "0"]]


def _gt_obj(e: curve.GT) -> list[list[list[str]]]:
    coeffs = _GT_RE.findall(str(e))
    if len(coeffs) != 6:  # pragma: no cover - library text format changed
        raise RuntimeError("unexpected GT text form from the curve library")
    fp2 = [[str(int(a)), str(int(b))] for a, b in coeffs]
    return [fp2[0:3], fp2[3:6]]


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, ensure_ascii=False)


def verification_key_json(vk: VerifyingKey) -> str:
    obj = {
        "protocol": "groth16",
        "curve": CURVE_NAME,
        "nPublic": vk.num_public,
        "vk_alpha_1": _g1_obj(vk.alpha_g1),
        "vk_beta_2": _g2_obj(vk.beta_g2),
        "vk_gamma_2": _g2_obj(vk.gamma_g2),
        "vk_delta_2": _g2_obj(vk.delta_g2),
        "vk_alphabeta_12": _gt_obj(curve.pairing(vk.alpha_g1, vk.beta_g2)),
        "IC": [_g1_obj(p) for p in vk.ic],
    }
    return _dump(obj)


def proof_json(proof: Proof) -> str:
    return _dump({
        "pi_a": _g1_obj(proof.a),
        "pi_b": _g2_obj(proof.b),
        "pi_c": _g1_obj(proof.c),
        "protocol": "groth16",
        "curve": CURVE_NAME,
    })


def public_json(public_inputs: list[int]) -> str:
    return _dump([str(x % R) for x in public_inputs])


# --- readers -------------------------------------------------------------------

def _int(s: Any) -> int:
    if not isinstance(s, str) or not s.isdigit():
        raise MalformedEncoding("expected a decimal string")
    return int(s)


def _g1_from(o: Any) -> curve.G1:
    if not isinstance(o, list) or len(o) != 3:
        raise MalformedEncoding("G1 point must be [x, y, z]")
    x, y, z = (_int(v) for v in o)
    if z == 0:
        return curve.g1_identity()
    if z != 1:
        raise MalformedEncoding("G1 point must be affine (z = 1)")
    return curve.g1_from_affine(x, y)


def _g2_from(o: Any) -> curve.G2:
    if not isinstance(o, list) or len(o) != 3 or not all(isinstance(c, list) and len(c) == 2 for c in o):
        raise MalformedEncoding("G2 point must be [[x0, x1], [y0, y1], [z0, z1]]")
    (x0, x1), (y0, y1), (z0, z1) = ((_int(a), _int(b)) for a, b in o)
    if (z0, z1) == (0, 0):
        return curve.g2_identity()
    if (z0, z1) != (1, 0):
        raise MalformedEncoding("G2 point must be affine (z = 1)")
    return curve.g2_from_affine((x0, x1), (y0, y1))


def _load(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedEncoding("not valid JSON") from exc


def verifying_key_from_json(text: str | bytes) -> VerifyingKey:
    o = _load(text)
    try:
        if o["protocol"] != "groth16" or o["curve"] != CURVE_NAME:
            raise MalformedEncoding("not a groth16 bls12381 verification key")
        ic = tuple(_g1_from(p) for p in o["IC"])
        if not ic or o["nPublic"] != len(ic) - 1:
            raise MalformedEncoding("verification key: nPublic does not match IC")
        return VerifyingKey(alpha_g1=_g1_from(o["vk_alpha_1"]), beta_g2=_g2_from(o["vk_beta_2"]),
                            gamma_g2=_g2_from(o["vk_gamma_2"]), delta_g2=_g2_from(o["vk_delta_2"]), ic=ic)
    except (KeyError, TypeError) as exc:
        raise MalformedEncoding("verification key JSON lacks a field") from exc


def proof_from_json(text: str | bytes) -> Proof:
    o = _load(text)
    try:
        if o.get("protocol", "groth16") != "groth16" or o.get("curve", CURVE_NAME) != CURVE_NAME:
            raise MalformedEncoding("not a groth16 bls12381 proof")
        return Proof(a=_g1_from(o["pi_a"]), b=_g2_from(o["pi_b"]), c=_g1_from(o["pi_c"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise MalformedEncoding("proof JSON lacks a field") from exc


def public_from_json(text: str | bytes) -> list[int]:
    o = _load(text)
    if not isinstance(o, list):
        raise MalformedEncoding("public.json must be an array")
    return [_int(x) for x in o]


__all__ = ["verification_key_json", "proof_json", "public_json",
           "verifying_key_from_json", "proof_from_json", "public_from_json"]
