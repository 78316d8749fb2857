"""Importers for circom ``.r1cs``, ``.wtns`` and snarkjs ``.zkey`` (BLS12-381): laws, refusals, fuzzing.

Valid files come from our writers (which snarkjs reads: see tests/e2e/test_circom_interop.py);
every malformed file must raise MalformedEncoding and nothing else.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teeprover.curve import P, R
from teeprover.errors import CircuitError, MalformedEncoding
from teeprover.groth16 import setup, verify
from teeprover.r1cs import R1CS, Constraint
from teeprover.snarkjs import _binfile, interop, r1cs, wtns, zkey
from teeprover.snarkjs.ptau import lagrange_params_from_secrets
from tests.support.circuits import squaring_chain

BN254_R = 0x30644E72E131A029B85045B68181585D2833E84879B9709143E1F593F0000001


@pytest.fixture(scope="module")
def chain() -> tuple[R1CS, list[int], object]:
    cs, z = squaring_chain(10)  # 11 constraints + 2 public + 1 -> domain 16
    params = lagrange_params_from_secrets(cs.domain_size(), tau=0x1234567, alpha=0xA1FA, beta=0xBE7A)
    return cs, z, setup.setup(cs, params, setup.ToxicWaste(delta=0xDE17A))


@pytest.fixture(scope="module")
def files(chain) -> dict[str, bytes]:
    cs, z, pk = chain
    return {"r1cs": r1cs.r1cs_to_bytes(cs), "wtns": wtns.wtns_to_bytes(z), "zkey": zkey.zkey_to_bytes(pk)}


PARSERS = {"r1cs": r1cs.parse_r1cs, "wtns": wtns.parse_wtns, "zkey": zkey.parse_zkey}


# --- round trips ------------------------------------------------------------------------

def test_r1cs_round_trip(chain, files) -> None:
    cs = r1cs.parse_r1cs(files["r1cs"])
    assert cs.constraints == chain[0].constraints
    assert (cs.num_variables, cs.num_public) == (chain[0].num_variables, chain[0].num_public)


def test_wtns_round_trip(chain, files) -> None:
    assert wtns.parse_wtns(files["wtns"]) == chain[1]


def test_zkey_round_trip_keeps_every_point_and_coefficient(chain, files) -> None:
    pk = chain[2]
    got = zkey.parse_zkey(files["zkey"], check_subgroup=True)
    assert got.vk == pk.vk and got.beta_g1 == pk.beta_g1 and got.delta_g1 == pk.delta_g1
    for name in ("coeffs", "a_query", "b_g1_query", "b_g2_query", "c_query", "h_query"):
        assert getattr(got, name) == getattr(pk, name), name
    assert (got.num_variables, got.num_public, got.domain_size) == (pk.num_variables, pk.num_public, pk.domain_size)


def test_zkey_coefficients_are_stored_montgomery_twice(files, chain) -> None:
    """zkey_new.js writes v * R^2 mod r (R = 2^256) in standard form; readZKey multiplies by R^-2."""
    bf = _binfile.parse(files["zkey"], "zkey", versions=(1,), what="t")
    sec4 = bytes(bf.section(4, what="t"))
    first = chain[2].coeffs[0]
    stored = int.from_bytes(sec4[4 + 12:4 + 44], "little")
    assert stored == first.value * pow(2, 512, R) % R
    assert stored != first.value


def test_zkey_points_are_montgomery_affine(files, chain) -> None:
    from teeprover import curve

    bf = _binfile.parse(files["zkey"], "zkey", versions=(1,), what="t")
    ic0 = bytes(bf.section(3, what="t"))[:96]
    affine = curve.g1_to_affine(chain[2].vk.ic[0])
    assert affine is not None
    x, y = affine
    assert int.from_bytes(ic0[:48], "little") == x * pow(2, 384, P) % P
    assert int.from_bytes(ic0[48:], "little") == y * pow(2, 384, P) % P


# --- interop ------------------------------------------------------------------------------

def _write(tmp: Path, files: dict[str, bytes]) -> tuple[Path, Path, Path]:
    paths = tuple(tmp / f"c.{ext}" for ext in ("r1cs", "wtns", "zkey"))
    for p in paths:
        p.write_bytes(files[p.suffix[1:]])
    return paths  # type: ignore[return-value]


def test_prove_snarkjs_files_gives_a_valid_proof(tmp_path: Path, files, chain) -> None:
    proof, public, vk = interop.prove_snarkjs_files(*_write(tmp_path, files))
    assert public == chain[1][1:3]
    assert verify.verify(vk, public, proof)
    assert not verify.verify(vk, [public[0], (public[1] + 1) % R], proof)
    interop.write_snarkjs_outputs(tmp_path / "out", proof, public, vk)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["proof.json", "public.json",
                                                                     "verification_key.json"]


def test_prove_snarkjs_files_refuses_a_bad_witness_naming_the_constraint(tmp_path: Path, files, chain) -> None:
    z = list(chain[1])
    z[5] = (z[5] + 1) % R
    paths = _write(tmp_path, {**files, "wtns": wtns.wtns_to_bytes(z)})
    with pytest.raises(CircuitError) as err:
        interop.prove_snarkjs_files(*paths)
    assert err.value.constraint in (1, 2)  # s_3 = z[5] appears in constraints 1 and 2
    assert "not satisfied" in err.value.message


def test_prove_snarkjs_files_refuses_a_key_of_another_circuit(tmp_path: Path, files) -> None:
    other, _ = squaring_chain(9)
    params = lagrange_params_from_secrets(other.domain_size(), tau=5, alpha=6, beta=7)
    wrong = zkey.zkey_to_bytes(setup.setup(other, params, setup.ToxicWaste(delta=8)))
    with pytest.raises(Exception, match="not made for this r1cs"):
        interop.prove_snarkjs_files(*_write(tmp_path, {**files, "zkey": wrong}))


def test_a_key_whose_coefficients_differ_from_its_points_gives_no_proof(tmp_path: Path, files, chain) -> None:
    """The fast path takes A z, B z from the key's section 4 and relies on verifying its proof: a section 4
    that does not match the key's points (or the .r1cs) must be refused there, and named by the reference
    path."""
    import dataclasses

    from teeprover.groth16.types import Coeff

    pk = chain[2]
    first = pk.coeffs[0]
    changed = (Coeff(first.matrix, first.constraint, first.signal, (first.value + 1) % R),) + tuple(pk.coeffs[1:])
    wrong = zkey.zkey_to_bytes(dataclasses.replace(pk, coeffs=changed))
    paths = _write(tmp_path, {**files, "zkey": wrong})
    with pytest.raises(interop._NotFast, match="does not verify"):
        interop._prove_fast(*paths)
    with pytest.raises(Exception, match="not made for this r1cs"):
        interop.prove_snarkjs_files(*paths)


# --- refusals -----------------------------------------------------------------------------

def test_r1cs_over_another_field_is_refused() -> None:
    header = struct.pack("<I", 32) + BN254_R.to_bytes(32, "little") + struct.pack("<IIIIQI", 2, 1, 0, 0, 2, 0)
    data = _binfile.build("r1cs", 1, [(1, header), (2, b"")])
    with pytest.raises(MalformedEncoding, match="bls12381"):
        r1cs.parse_r1cs(data)
    good = struct.pack("<I", 32) + R.to_bytes(32, "little") + struct.pack("<IIIIQI", 2, 1, 0, 0, 2, 0)
    assert r1cs.parse_r1cs(_binfile.build("r1cs", 1, [(1, good), (2, b"")])).num_variables == 2


def test_r1cs_with_custom_gates_is_refused(files) -> None:
    bf = _binfile.parse(files["r1cs"], "r1cs", versions=(1,), what="t")
    secs = [(s, bytes(bf.section(s, what="t"))) for s in (1, 2, 3)] + [(4, struct.pack("<I", 0))]
    with pytest.raises(MalformedEncoding, match="custom gates"):
        r1cs.parse_r1cs(_binfile.build("r1cs", 1, secs))


def test_r1cs_wire_out_of_range_is_refused() -> None:
    cs = R1CS(num_variables=3, num_public=1, constraints=(Constraint({7: 1}, {0: 1}, {1: 1}),))
    with pytest.raises(MalformedEncoding, match="wire 7"):
        r1cs.parse_r1cs(r1cs.r1cs_to_bytes(cs))


def test_header_claiming_huge_counts_is_refused_without_allocating() -> None:
    header = struct.pack("<I", 32) + R.to_bytes(32, "little") + struct.pack("<IIIIQI", 1 << 27, 1, 0, 0, 0, 1 << 24)
    with pytest.raises(MalformedEncoding):
        r1cs.parse_r1cs(_binfile.build("r1cs", 1, [(1, header), (2, bytes(12))]))
    wh = struct.pack("<I", 32) + R.to_bytes(32, "little") + struct.pack("<I", (1 << 28) - 1)
    with pytest.raises(MalformedEncoding):
        wtns.parse_wtns(_binfile.build("wtns", 2, [(1, wh), (2, bytes(64))]))


def test_section_size_past_end_of_file_is_refused() -> None:
    data = b"wtns" + struct.pack("<II", 2, 1) + struct.pack("<IQ", 1, 1 << 62)
    with pytest.raises(MalformedEncoding, match="past the end"):
        wtns.parse_wtns(data)


def test_wtns_value_not_reduced_is_refused(chain) -> None:
    data = bytearray(wtns.wtns_to_bytes(chain[1]))
    data[-32:] = R.to_bytes(32, "little")
    with pytest.raises(MalformedEncoding, match="reduced"):
        wtns.parse_wtns(bytes(data))


def _zkey_sections(data: bytes) -> list[tuple[int, bytes]]:
    bf = _binfile.parse(data, "zkey", versions=(1,), what="t")
    return [(s, bytes(bf.section(s, what="t"))) for s in sorted(bf.sections)]


def _replace(secs: list[tuple[int, bytes]], sec: int, body: bytes) -> bytes:
    return _binfile.build("zkey", 1, [(s, body if s == sec else b) for s, b in secs])


def test_zkey_of_another_protocol_is_refused(files) -> None:
    with pytest.raises(MalformedEncoding, match="not Groth16"):
        zkey.parse_zkey(_replace(_zkey_sections(files["zkey"]), 1, struct.pack("<I", 2)))  # PLONK


def test_zkey_point_off_the_curve_is_refused(files) -> None:
    secs = _zkey_sections(files["zkey"])
    a = bytearray(dict(secs)[5])
    a[96 + 50] ^= 1  # y of the second A point
    with pytest.raises(MalformedEncoding, match="not on the curve"):
        zkey.parse_zkey(_replace(secs, 5, bytes(a)))


def test_zkey_unreduced_coordinate_is_refused(files) -> None:
    secs = _zkey_sections(files["zkey"])
    a = bytearray(dict(secs)[6])
    a[96:144] = (P + 1).to_bytes(48, "little")
    with pytest.raises(MalformedEncoding, match="reduced"):
        zkey.parse_zkey(_replace(secs, 6, bytes(a)))


def _g1_outside_subgroup() -> tuple[int, int]:
    x = 1
    while True:
        rhs = (x**3 + 4) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return x, y
        x += 1


def test_zkey_verifying_key_point_outside_the_subgroup_is_refused(files) -> None:
    x, y = _g1_outside_subgroup()
    lem = (x * pow(2, 384, P) % P).to_bytes(48, "little") + (y * pow(2, 384, P) % P).to_bytes(48, "little")
    secs = _zkey_sections(files["zkey"])
    ic = lem + dict(secs)[3][96:]
    with pytest.raises(MalformedEncoding):
        zkey.parse_zkey(_replace(secs, 3, ic))
    # The same point in a bulk query passes the on-curve check; only check_subgroup=True refuses it.
    h = lem + dict(secs)[9][96:]
    zkey.parse_zkey(_replace(secs, 9, h))
    with pytest.raises(MalformedEncoding):
        zkey.parse_zkey(_replace(secs, 9, h), check_subgroup=True)


def test_zkey_coefficient_out_of_range_is_refused(files) -> None:
    secs = _zkey_sections(files["zkey"])
    s4 = bytearray(dict(secs)[4])
    s4[4 + 4:4 + 8] = struct.pack("<I", 1 << 20)  # constraint index beyond the domain
    with pytest.raises(MalformedEncoding, match="out of range"):
        zkey.parse_zkey(_replace(secs, 4, bytes(s4)))


def test_missing_and_duplicated_sections_are_refused(files) -> None:
    secs = _zkey_sections(files["zkey"])
    with pytest.raises(MalformedEncoding, match="missing section 9"):
        zkey.parse_zkey(_binfile.build("zkey", 1, [(s, b) for s, b in secs if s != 9]))
    with pytest.raises(MalformedEncoding, match="duplicated"):
        zkey.parse_zkey(_binfile.build("zkey", 1, secs + [(9, dict(secs)[9])]))


@pytest.mark.parametrize("kind", sorted(PARSERS))
@pytest.mark.parametrize("junk", [b"", b"r1cs", b"zkey\x01\x00\x00\x00", b"\x00" * 64, b"wtns" + b"\xff" * 40])
def test_junk_raises_malformed_encoding(kind: str, junk: bytes) -> None:
    with pytest.raises(MalformedEncoding):
        PARSERS[kind](junk)


def test_sections_are_read_from_the_file_when_asked_for(tmp_path: Path, files) -> None:
    """read_path keeps only the section table; a file cut short after that is malformed, not a crash."""
    path = tmp_path / "k.zkey"
    path.write_bytes(files["zkey"])
    bf = _binfile.read_path(path, "zkey", versions=(1,), what="zkey")
    assert bf.data is None and bytes(bf.section(1, what="zkey")) == bytes(
        _binfile.parse(files["zkey"], "zkey", versions=(1,), what="zkey").section(1, what="zkey"))
    with open(path, "r+b") as f:
        f.truncate(len(files["zkey"]) // 2)
    with pytest.raises(MalformedEncoding, match="changed while it was being read"):
        bf.section_bytes(9, what="zkey")
    with pytest.raises(MalformedEncoding):
        zkey.read_zkey(path)


def test_read_missing_file_raises_malformed_encoding(tmp_path: Path) -> None:
    with pytest.raises(MalformedEncoding):
        zkey.read_zkey(tmp_path / "nope.zkey")


# --- fuzzing: mutated and truncated files ----------------------------------------------------

_U32_EDGE = st.sampled_from([0, 1, 2, 3, 16, 0xFF, 1 << 16, 1 << 24, 1 << 31, 0xFFFFFFFF])


@st.composite
def mutations(draw: st.DrawFn, size: int) -> list[tuple[str, int, int]]:
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "u32", "truncate", "byte"]))
        pos = draw(st.integers(0, size - 1))
        val = draw(_U32_EDGE) if kind == "u32" else draw(st.integers(0, 255))
        ops.append((kind, pos, val))
    return ops


def _apply(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    b = bytearray(data)
    for kind, pos, val in ops:
        if not b:
            break
        pos %= len(b)
        if kind == "flip":
            b[pos] ^= 1 << (val % 8)
        elif kind == "byte":
            b[pos] = val
        elif kind == "u32":
            pos -= pos % 4
            b[pos:pos + 4] = struct.pack("<I", val)
        else:
            del b[pos:]
    return bytes(b)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_files_decode_or_raise_malformed_encoding_only(kind: str, files, data: st.DataObject) -> None:
    original = files[kind]
    mutated = _apply(original, data.draw(mutations(len(original))))
    try:
        PARSERS[kind](mutated)
    except MalformedEncoding:
        pass


def test_prove_snarkjs_files_fast_path_takes_valid_files_and_gives_up_on_others(tmp_path: Path, files,
                                                                               chain) -> None:
    """The fast path proves valid files itself (no silent fallback every time) and refuses anything else,
    leaving the precise error to the reference path (the two tests above)."""
    proof, public, vk = interop._prove_fast(*_write(tmp_path, files))
    assert public == chain[1][1:3] and verify.verify(vk, public, proof)
    z = list(chain[1])
    z[5] = (z[5] + 1) % R
    with pytest.raises(Exception):  # noqa: B017 - any refusal hands over to the reference path
        interop._prove_fast(*_write(tmp_path, {**files, "wtns": wtns.wtns_to_bytes(z)}))
