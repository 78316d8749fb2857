"""Prove a circom/snarkjs circuit with our prover: ``.r1cs`` + ``.wtns`` + ``.zkey`` in, snarkjs JSON out.

``prove_snarkjs_files`` is what ``teeprover prove --r1cs F --wtns F --zkey F`` runs:
read the three files (strictly), check that they belong together and that the
witness satisfies the circuit (a :class:`~teeprover.errors.CircuitError` naming the
first failing constraint), prove with :func:`create_random_proof`, and verify the
proof with our own verifier before returning it (a proof that fails is a bug and
is never returned: :class:`~teeprover.errors.ProofVerificationFailed`).
``write_snarkjs_outputs`` writes ``proof.json``, ``public.json`` and
``verification_key.json`` exactly as snarkjs does, so ``snarkjs groth16 verify``
checks them.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from teeprover.curve import R, native_order
from teeprover.errors import InvalidInput, ProofVerificationFailed
from teeprover.groth16 import qap
from teeprover.groth16.prove import EarlyMsms, create_random_proof
from teeprover.groth16.types import Coeff, Proof, ProvingKey, VerifyingKey
from teeprover.groth16.verify import verify
from teeprover.r1cs import R1CS
from teeprover.snarkjs import export
from teeprover.snarkjs.r1cs import Header, read_r1cs, read_r1cs_raw
from teeprover.snarkjs.wtns import read_wtns
from teeprover.snarkjs.zkey import read_zkey


def _matrices(coeffs: Iterable[Coeff]) -> dict[tuple[int, int, int], int]:
    """Sparse A/B entries with repeats summed and zeros dropped (snarkjs keeps both; we merge)."""
    acc: dict[tuple[int, int, int], int] = defaultdict(int)
    for c in coeffs:
        acc[c.matrix, c.constraint, c.signal] += c.value
    return {key: v % R for key, v in acc.items() if v % R}


def check_key_matches_circuit(r1cs: R1CS, pk: ProvingKey) -> None:
    """Raise InvalidInput unless ``pk`` was made for ``r1cs`` (sizes and the A/B matrices)."""
    problems = []
    if pk.num_variables != r1cs.num_variables:
        problems.append(f"variables: zkey {pk.num_variables}, r1cs {r1cs.num_variables}")
    if pk.num_public != r1cs.num_public:
        problems.append(f"public inputs: zkey {pk.num_public}, r1cs {r1cs.num_public}")
    if pk.domain_size != r1cs.domain_size():
        problems.append(f"domain size: zkey {pk.domain_size}, r1cs needs {r1cs.domain_size()}")
    if not problems and _matrices(pk.coeffs) != _matrices(qap.constraint_coeffs(r1cs)):
        problems.append("the A/B coefficients differ")
    if problems:
        raise InvalidInput("the zkey was not made for this r1cs: " + "; ".join(problems),
                           details={"mismatch": problems})


def prove_snarkjs_files(
    r1cs_path: str | Path, wtns_path: str | Path, zkey_path: str | Path,
) -> tuple[Proof, list[int], VerifyingKey]:
    """``(proof, public_inputs, vk)`` for a circom witness, proved with our prover and checked by our verifier.

    Tries :func:`_prove_fast` first; if anything there is not exactly as expected (a malformed file, a
    witness that fails, a key for another circuit, or merely a layout it does not recognise) it gives up
    and :func:`_prove_reference` does everything again step by step and raises the precise error.
    """
    try:
        return _prove_fast(Path(r1cs_path), Path(wtns_path), Path(zkey_path))
    except Exception:  # noqa: BLE001 - the reference path decides (and names the error)
        pass
    return _prove_reference(r1cs_path, wtns_path, zkey_path)


def _prove_reference(
    r1cs_path: str | Path, wtns_path: str | Path, zkey_path: str | Path,
) -> tuple[Proof, list[int], VerifyingKey]:
    r1cs = read_r1cs(r1cs_path)
    witness = read_wtns(wtns_path)
    r1cs.check_witness(witness)  # CircuitError: wrong length, witness[0] != 1, or the first unsatisfied constraint
    pk = read_zkey(zkey_path)
    check_key_matches_circuit(r1cs, pk)
    proof = create_random_proof(pk, witness)
    public = witness[1:1 + pk.num_public]
    if not verify(pk.vk, public, proof):
        raise ProofVerificationFailed("the proof we produced does not verify; not returned")
    return proof, public, pk.vk


class _NotFast(Exception):
    """The fast path does not vouch for these files: use the reference path."""


_RR2 = pow(2, 512, R)  # zkey section 4 stores v * 2^512 mod r ("Montgomery twice")
_U32 = struct.Struct("<I").unpack_from
_ENTRY = struct.Struct("<I32s")  # an .r1cs row entry: wire, coefficient
_COEF = struct.Struct("<III32s")  # a .zkey section-4 record: matrix, constraint, signal, value


def _prove_fast(r1cs_path: Path, wtns_path: Path, zkey_path: Path) -> tuple[Proof, list[int], VerifyingKey]:
    """The same checks and the same proof as :func:`_prove_reference`, with less work and more overlap.

    * The four MSMs that need only the witness start while the key is decoded (B2 first):
      :class:`~teeprover.groth16.prove.EarlyMsms`; the rest runs on the other core meanwhile.
    * The ``.r1cs`` is walked once, straight from its bytes (:func:`_scan_constraints`): every row
      checked as :func:`read_r1cs` checks it, every constraint checked on the witness as
      ``R1CS.check_witness`` does, and the A/B entries rebuilt in the zkey's section-4 layout,
      compared with the key's section 4 byte for byte (so no :class:`Coeff` objects, and the
      prover's QAP data comes from the same walk).
    Anything unexpected raises, and the caller falls back to the reference path.
    """
    witness = read_wtns(wtns_path)
    if not witness or witness[0] != 1:
        raise _NotFast("witness[0] != 1")
    hdr, cons = read_r1cs_raw(r1cs_path)
    if len(witness) != hdr.num_variables:
        raise _NotFast("witness length")
    early = EarlyMsms(witness, hdr.num_public)
    sec4: list[bytes] = []  # a copy: the zkey file's buffer is freed once the key is decoded
    try:
        pk = read_zkey(zkey_path, on_query=early.on_query, raw_coeffs=lambda mv: sec4.append(mv.tobytes()))
        if (pk.num_variables, pk.num_public, pk.domain_size) != (
                hdr.num_variables, hdr.num_public, hdr.domain_size()):
            raise _NotFast("sizes")
        prep, early.evals = _scan_constraints(cons, hdr, witness, sec4.pop())
        del cons  # the .r1cs file's buffer
        pk._cache["qap"] = prep
        proof = create_random_proof(pk, witness, early=early)
    except BaseException:
        early.cancel()
        raise
    public = witness[1:1 + pk.num_public]
    if not verify(pk.vk, public, proof):
        raise _NotFast("the proof does not verify")
    return proof, public, pk.vk


def _scan_constraints(cons: memoryview, hdr: Header, z: list[int],
                      sec4: bytes | memoryview) -> tuple[qap._Prepared, tuple[list[int], list[int]]]:
    """Check every constraint on the witness and that the key's A/B entries are the circuit's.

    Returns the prover's QAP data and ``A z``, ``B z`` on the domain (native order, reduced): the
    first step of the witness map, already done here.

    Raises :class:`_NotFast` (or any error) on anything :func:`read_r1cs`, ``check_witness`` or
    :func:`check_key_matches_circuit` might refuse, and when section 4 is laid out differently from
    what snarkjs writes (then the reference path compares the matrices entry by entry).
    """
    n = hdr.domain_size()
    pos = native_order(n)[0]
    buf = cons  # struct reads straight from the file's buffer (no copy)
    size = len(buf)
    r, u32, entry = R, _U32, _ENTRY.unpack_from
    conv: dict[bytes, tuple[int, bytes]] = {}  # coefficient bytes -> (value, zkey bytes): a few distinct values

    def value(cb: bytes) -> tuple[int, bytes]:
        v = int.from_bytes(cb, "little")
        if v >= r:
            raise _NotFast("coefficient not reduced")
        cv = conv[cb] = (v, (v * _RR2 % r).to_bytes(32, "little"))
        return cv

    def c_value(cb: bytes) -> int:  # C is not in the key: no zkey form, and no memo (often one value a row)
        v = int.from_bytes(cb, "little")
        if v >= r:
            raise _NotFast("coefficient not reduced")
        return v

    recs: list[tuple[int, int, int, bytes]] = []  # zkey section-4 records, in snarkjs's order
    rec = recs.append
    body = memoryview(sec4)[4:]
    n_recs = len(body) // _COEF.size  # the zkey reader checked len(sec4) == 4 + count * size
    done = 0

    def flush() -> None:  # compare in blocks: never all of section 4 as Python objects at once
        nonlocal done
        k = len(recs)
        if done + k > n_recs or list(_COEF.iter_unpack(body[_COEF.size * done:_COEF.size * (done + k)])) != recs:
            raise _NotFast("section 4 differs from the circuit (or is ordered differently)")
        done += k
        recs.clear()

    a1: list[tuple[int, int]] = []
    b1: list[tuple[int, int]] = []
    a: list[tuple[int, int, int]] = []
    b: list[tuple[int, int, int]] = []
    eva, evb = [0] * n, [0] * n
    get = conv.get
    p = 0
    def header(at: int) -> tuple[int, int]:
        """A row's entry count at ``at`` → (first entry, end of the row)."""
        (cnt,) = u32(buf, at)
        first, last = at + 4, at + 4 + 36 * cnt
        if last > size:
            raise _NotFast("truncated")
        return first, last

    def key_row(matrix: int, ci: int, slot: int, at: int, ones: list[tuple[int, int]],
                others: list[tuple[int, int, int]]) -> tuple[int, int]:
        """One A (matrix 0) or B (matrix 1) row: records its section-4 entries, returns (<row, z>, end)."""
        first, last = header(at)
        d = 0
        for e in range(first, last, 36):
            w, cb = entry(buf, e)
            v, zb = get(cb) or value(cb)
            rec((matrix, ci, w, zb))
            if v == 1:
                d += z[w]  # IndexError for a wire out of range
                ones.append((slot, w))
            else:
                d += v * z[w]
                others.append((slot, w, v))
        return d % r, last

    for ci in range(hdr.num_constraints):
        slot = pos[ci]
        da, p = key_row(0, ci, slot, p, a1, a)
        db, p = key_row(1, ci, slot, p, b1, b)
        first, p = header(p)
        dc = 0
        for e in range(first, p, 36):
            w, cb = entry(buf, e)
            cv = get(cb)
            dc += (cv[0] if cv is not None else c_value(cb)) * z[w]
        if (da * db - dc) % r:
            raise _NotFast("constraint not satisfied")
        eva[slot] = da
        evb[slot] = db
        if len(recs) >= 1 << 16:
            flush()
    if p != size:
        raise _NotFast("trailing bytes")
    one = _RR2.to_bytes(32, "little")
    n_c = hdr.num_constraints
    for s in range(hdr.num_public + 1):  # snarkjs's public-input rows: A = z_s
        rec((0, n_c + s, s, one))
        a1.append((pos[n_c + s], s))
        eva[pos[n_c + s]] = z[s]
    flush()
    if done != n_recs or _U32(sec4, 0)[0] != n_recs:
        raise _NotFast("section 4 has more entries than the circuit")
    evals = (eva, evb)
    return qap._Prepared.from_entries(n, a1, b1, a, b), evals


def write_snarkjs_outputs(directory: str | Path, proof: Proof, public: list[int], vk: VerifyingKey) -> None:
    """Write ``proof.json``, ``public.json`` and ``verification_key.json`` into ``directory`` (created)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "proof.json").write_text(export.proof_json(proof))
    (d / "public.json").write_text(export.public_json(public))
    (d / "verification_key.json").write_text(export.verification_key_json(vk))


__all__ = ["prove_snarkjs_files", "write_snarkjs_outputs", "check_key_matches_circuit"]
