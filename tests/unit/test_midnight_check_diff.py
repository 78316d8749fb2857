"""Differential test: our ``/check`` against Midnight's ``check`` (``@midnight-ntwrk/zkir-v2``, its preprocess).

Hypothesis builds random ZKIR v2 circuits over the ops our synthesizer implements (``synth.OPS``: arithmetic,
boolean, transcript and pi_skip ops, ``transient_hash``, ``persistent_hash``, the Jubjub ops), a quarter of them
with the communications commitment, together with a preimage that mostly satisfies them (values are tracked
while the circuit is built, hashes and points by our out-of-circuit twins); in about a third of the cases one
value of the preimage is changed.  Both sides run the pair: Midnight on its own bytes (``midnight:proof-preimage:``,
our encoder) and the JSON circuit, we on the same circuit and preimage.  They must agree on accept / refuse, and
on an accepted preimage the pi_skip lists must be equal (Midnight's ``None`` = "checked" is our ``0``).

Points the builder makes are valid, but a changed value can shift which transcript entries land on a point's
cells; Midnight's check panics on an invalid input point (``test_invalid_points_crash_midnight_and_we_refuse_them``),
so when we refuse over a point the case is run by Midnight in a node process of its own.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teeprover.errors import CircuitError, MalformedEncoding
from teeprover.r1cs import R
from teeprover.zkir import alignment, check, load_circuit
from teeprover.zkir.gadgets import fab, hash_to_curve, jubjub, poseidon
from teeprover.zkir.ir import MAX_DIV_MOD_BITS, MAX_LESS_THAN_BITS, format_immediate
from teeprover.zkir.preimage import ProofPreimage
from teeprover.zkir.synth import OPS
from tests.support import midnight as midnight_support
from tests.support.midnight import MidnightError, MidnightOracle
from tests.support.midnight_wallet import midnight_check

DEFAULT_CASES = 2000
SLOW_CASES = 20000
KEY = "diff/circuit"


def _value(rnd: random.Random) -> int:
    kind = rnd.randrange(7)
    if kind == 0:
        return rnd.choice((0, 1))
    if kind == 1:
        return rnd.randrange(1 << 8)
    if kind == 2:
        return rnd.randrange(1 << 64)
    if kind == 3:
        return rnd.choice((R - 1, R - 2, (1 << 248) - 1, 1 << 248))
    return rnd.randrange(R)


@dataclass
class _Builder:
    """A circuit and a preimage that satisfies it, built together (values follow Midnight's preprocess)."""

    rnd: random.Random
    vals: list[int] = field(default_factory=list)
    ins: list[dict[str, Any]] = field(default_factory=list)
    priv: list[int] = field(default_factory=list)
    pto: list[int] = field(default_factory=list)
    pti: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)
    split: list[tuple[int, int, int]] = field(default_factory=list)  # (quotient, remainder, bits) cells
    points: list[tuple[int, int]] = field(default_factory=list)  # (x, y) cells of points made by ec ops
    outputs: list[int] = field(default_factory=list)  # values of the output instructions, in order
    point_coords: set[int] = field(default_factory=set)  # private transcript entries that are point coordinates

    def cell(self) -> int:
        return self.rnd.randrange(len(self.vals))

    def bool_cell(self) -> int:
        if self.rnd.random() < 0.02:
            return self.cell()  # usually not a boolean: the preimage fails here
        bools = [i for i, v in enumerate(self.vals) if v in (0, 1)]
        if not bools:
            _test_eq(self)
            bools = [len(self.vals) - 1]
        return self.rnd.choice(bools)

    def cell_below(self, bits: int) -> int:
        fitting = [i for i, v in enumerate(self.vals) if v.bit_length() <= bits]
        return self.rnd.choice(fitting) if fitting and self.rnd.random() < 0.97 else self.cell()

    def guard(self) -> int | None:
        return None if self.rnd.random() < 0.5 else self.bool_cell()

    def push(self, op: dict[str, Any], *values: int) -> None:
        self.ins.append(op)
        self.vals.extend(v % R for v in values)

    def bits_at_least(self, v: int, limit: int) -> int:
        need = max(v.bit_length(), 1)
        if self.rnd.random() < 0.03:
            return min(max(need - 1, 1), limit)  # usually too few: the preimage fails here
        return self.rnd.randint(need, limit) if need <= limit else limit


def _add(b: _Builder) -> None:
    x, y = b.cell(), b.cell()
    b.push({"op": "add", "a": x, "b": y}, b.vals[x] + b.vals[y])


def _mul(b: _Builder) -> None:
    x, y = b.cell(), b.cell()
    b.push({"op": "mul", "a": x, "b": y}, b.vals[x] * b.vals[y])


def _neg(b: _Builder) -> None:
    x = b.cell()
    b.push({"op": "neg", "a": x}, -b.vals[x])


def _copy(b: _Builder) -> None:
    x = b.cell()
    b.push({"op": "copy", "var": x}, b.vals[x])


def _load_imm(b: _Builder) -> None:
    v = _value(b.rnd)
    b.push({"op": "load_imm", "imm": format_immediate(v)}, v)


def _not(b: _Builder) -> None:
    x = b.bool_cell()
    b.push({"op": "not", "a": x}, 1 - b.vals[x])


def _assert(b: _Builder) -> None:
    ones = [i for i, v in enumerate(b.vals) if v == 1]
    x = b.rnd.choice(ones) if ones and b.rnd.random() < 0.97 else b.cell()
    b.push({"op": "assert", "cond": x})


def _constrain_eq(b: _Builder) -> None:
    x = b.cell()
    same = [i for i, v in enumerate(b.vals) if v == b.vals[x]]
    y = b.rnd.choice(same) if b.rnd.random() < 0.97 else b.cell()
    b.push({"op": "constrain_eq", "a": x, "b": y})


def _constrain_to_boolean(b: _Builder) -> None:
    b.push({"op": "constrain_to_boolean", "var": b.bool_cell()})


def _constrain_bits(b: _Builder) -> None:
    x = b.cell_below(254)
    b.push({"op": "constrain_bits", "var": x, "bits": b.bits_at_least(b.vals[x], 254)})


def _cond_select(b: _Builder) -> None:
    bit, x, y = b.bool_cell(), b.cell(), b.cell()
    b.push({"op": "cond_select", "bit": bit, "a": x, "b": y}, b.vals[x] if b.vals[bit] == 1 else b.vals[y])


def _test_eq(b: _Builder) -> None:
    x = b.cell()
    same = [i for i, v in enumerate(b.vals) if v == b.vals[x]]
    y = b.rnd.choice(same) if b.rnd.random() < 0.5 else b.cell()
    b.push({"op": "test_eq", "a": x, "b": y}, int(b.vals[x] == b.vals[y]))


def _less_than(b: _Builder) -> None:
    x, y = b.cell_below(MAX_LESS_THAN_BITS), b.cell_below(MAX_LESS_THAN_BITS)
    bits = b.bits_at_least(max(b.vals[x], b.vals[y]), MAX_LESS_THAN_BITS)
    b.push({"op": "less_than", "a": x, "b": y, "bits": bits}, int(b.vals[x] < b.vals[y]))


def _div_mod_power_of_two(b: _Builder) -> None:
    x = b.cell()
    bits = b.rnd.choice((0, 1, 8, 64, 128, b.rnd.randint(0, MAX_DIV_MOD_BITS), MAX_DIV_MOD_BITS))
    v = b.vals[x]
    b.push({"op": "div_mod_power_of_two", "var": x, "bits": bits}, v >> bits, v & ((1 << bits) - 1))
    if bits >= 1:
        b.split.append((len(b.vals) - 2, len(b.vals) - 1, bits))


def _reconstitute_field(b: _Builder) -> None:
    if b.split and b.rnd.random() < 0.95:
        q, rem, bits = b.rnd.choice(b.split)
    else:
        q, rem, bits = b.cell(), b.cell(), b.rnd.randint(1, MAX_DIV_MOD_BITS)
    b.push({"op": "reconstitute_field", "divisor": q, "modulus": rem, "bits": bits},
           (b.vals[q] << bits) + b.vals[rem])


def _transcript_input(b: _Builder, op: str, transcript: list[int]) -> None:
    g = b.guard()
    if g is not None and b.vals[g] == 0:
        v = 0
    else:
        v = _value(b.rnd)
        transcript.append(v)
    b.push({"op": op, "guard": g}, v)


def _public_input(b: _Builder) -> None:
    _transcript_input(b, "public_input", b.pto)


def _private_input(b: _Builder) -> None:
    _transcript_input(b, "private_input", b.priv)


def _declare_pub_input(b: _Builder) -> None:
    x = b.cell()
    b.pending.append(b.vals[x])
    b.push({"op": "declare_pub_input", "var": x})


def _pi_skip(b: _Builder) -> None:
    count = len(b.pending) if b.rnd.random() < 0.8 else b.rnd.randint(0, len(b.pending))
    g = b.guard()
    group = b.pending[len(b.pending) - count:]
    del b.pending[len(b.pending) - count:]
    if g is None or b.vals[g] != 0:
        b.pti.extend(group)
    b.push({"op": "pi_skip", "guard": g, "count": count})


def _output(b: _Builder) -> None:
    x = b.cell()
    b.outputs.append(b.vals[x])
    b.push({"op": "output", "var": x})


def _cells(b: _Builder, lo: int, hi: int) -> list[int]:
    return [b.cell() for _ in range(b.rnd.randint(lo, hi))]


def _transient_hash(b: _Builder) -> None:
    cells = _cells(b, 0, 5)
    b.push({"op": "transient_hash", "inputs": cells}, poseidon.transient_hash([b.vals[c] for c in cells]))


def _persistent_hash(b: _Builder) -> None:
    atoms: list[dict[str, Any]] = []
    cells: list[int] = []
    for _ in range(b.rnd.randint(1, 3)):
        if b.rnd.random() < 0.5:
            atoms.append({"tag": "atom", "value": {"tag": "field"}})
            cells.append(b.cell())
        else:
            length = b.rnd.choice((0, 1, 5, 31, 32, 40, b.rnd.randint(0, 64)))
            atoms.append({"tag": "atom", "value": {"tag": "bytes", "length": length}})
            cells.extend(b.cell_below(8) for _ in range(-(-length // 31)))  # one byte fits every chunk
    try:
        digest = fab.persistent_hash(alignment.parse_alignment(atoms), [b.vals[c] for c in cells])
    except alignment.AlignmentMismatch:
        digest = [0, 0]  # the preimage fails here
    b.push({"op": "persistent_hash", "alignment": atoms, "inputs": cells}, *digest)


def _point(b: _Builder) -> tuple[int, int]:
    """Cells holding a point: one made earlier, or two private inputs carrying one (sometimes off the curve)."""
    if b.points and b.rnd.random() < 0.8:
        return b.rnd.choice(b.points)
    # Always a valid point: Midnight's check panics (wasm "unreachable", the node process dies) on an input point
    # off the curve or outside the subgroup; test_invalid_points_crash_midnight_and_we_refuse_them covers those.
    x, y = jubjub.mul_generator(_value(b.rnd))
    for v in (x, y):
        b.point_coords.add(len(b.priv))
        b.priv.append(v)
        b.push({"op": "private_input", "guard": None}, v)
    return len(b.vals) - 2, len(b.vals) - 1


def _push_point(b: _Builder, op: dict[str, Any], p: tuple[int, int]) -> None:
    b.push(op, *p)
    b.points.append((len(b.vals) - 2, len(b.vals) - 1))


def _point_of(b: _Builder, cells: tuple[int, int]) -> tuple[int, int]:
    return b.vals[cells[0]], b.vals[cells[1]]


def _ec_add(b: _Builder) -> None:
    (ax, ay), (bx, by) = _point(b), _point(b)
    _push_point(b, {"op": "ec_add", "a_x": ax, "a_y": ay, "b_x": bx, "b_y": by},
                jubjub.add(_point_of(b, (ax, ay)), _point_of(b, (bx, by))))


def _ec_mul(b: _Builder) -> None:
    ax, ay = _point(b)
    k = b.cell()
    _push_point(b, {"op": "ec_mul", "a_x": ax, "a_y": ay, "scalar": k}, jubjub.mul(_point_of(b, (ax, ay)), b.vals[k]))


def _ec_mul_generator(b: _Builder) -> None:
    k = b.cell()
    _push_point(b, {"op": "ec_mul_generator", "scalar": k}, jubjub.mul_generator(b.vals[k]))


def _hash_to_curve(b: _Builder) -> None:
    cells = _cells(b, 0, 4)
    _push_point(b, {"op": "hash_to_curve", "inputs": cells}, hash_to_curve.hash_to_curve([b.vals[c] for c in cells]))


GENERATORS = {
    "add": _add, "mul": _mul, "neg": _neg, "copy": _copy, "load_imm": _load_imm, "not": _not, "assert": _assert,
    "constrain_eq": _constrain_eq, "constrain_to_boolean": _constrain_to_boolean, "constrain_bits": _constrain_bits,
    "cond_select": _cond_select, "test_eq": _test_eq, "less_than": _less_than,
    "div_mod_power_of_two": _div_mod_power_of_two, "reconstitute_field": _reconstitute_field,
    "public_input": _public_input, "private_input": _private_input, "declare_pub_input": _declare_pub_input,
    "pi_skip": _pi_skip, "output": _output, "transient_hash": _transient_hash, "persistent_hash": _persistent_hash,
    "ec_add": _ec_add, "ec_mul": _ec_mul, "ec_mul_generator": _ec_mul_generator, "hash_to_curve": _hash_to_curve,
}
# Relative frequency of each op in a circuit.  In the default run the heavy gadgets are rare so that 2,000 cases
# stay quick (our check of one SHA-256 block takes ~0.25 s, of one ec_mul ~0.1 s); the slow run weighs them more.
WEIGHTS = {op: 10.0 for op in GENERATORS} | {"persistent_hash": 0.25, "ec_mul": 1, "ec_mul_generator": 1,
                                              "hash_to_curve": 1, "ec_add": 2, "transient_hash": 3}
SLOW_WEIGHTS = WEIGHTS | {"persistent_hash": 2, "ec_mul": 4, "ec_mul_generator": 4, "hash_to_curve": 4, "ec_add": 6,
                          "transient_hash": 8}
COVERED = sorted(set(GENERATORS) & set(OPS))


def _case(rnd: random.Random, op_weights: dict[str, float] = WEIGHTS) -> tuple[str, ProofPreimage, bool]:
    """(circuit JSON, preimage, whether one value was changed)."""
    b = _Builder(rnd)
    num_inputs = rnd.randint(0, 4)
    inputs = [_value(rnd) for _ in range(num_inputs)]
    b.vals.extend(inputs)
    if not b.vals:
        _load_imm(b)
    weights = [op_weights[op] for op in COVERED]
    for op in rnd.choices(COVERED, weights, k=rnd.randint(1, 24)):
        GENERATORS[op](b)
    if b.pending and rnd.random() < 0.9:
        _pi_skip(b)
    pti = b.pti + b.pending  # declared but never checked: counted, not compared
    commit = rnd.random() < 0.25
    cc = None
    if commit:
        randomness = _value(rnd)
        cc = (poseidon.transient_commit([*inputs, *b.outputs], randomness), randomness)
    pre = ProofPreimage(inputs=tuple(inputs), private_transcript=tuple(b.priv), public_transcript_inputs=tuple(pti),
                        public_transcript_outputs=tuple(b.pto), binding_input=_value(rnd),
                        communications_commitment=cc, key_location=KEY)
    changed = False
    vectors = [name for name in ("inputs", "private_transcript", "public_transcript_inputs",
                                 "public_transcript_outputs", "communications_commitment") if getattr(pre, name)]
    if vectors and rnd.random() < 0.3:
        name = rnd.choice(vectors)
        values = list(getattr(pre, name))
        i = rnd.randrange(len(values))
        if name == "private_transcript" and i in b.point_coords:
            name, values, i = "binding_input", [pre.binding_input], 0  # a broken point would crash Midnight
        values[i] = (values[i] + rnd.choice((1, R - 1, rnd.randrange(1, R)))) % R
        change: dict[str, Any] = {name: values[0] if name == "binding_input" else tuple(values)}
        pre = replace(pre, **change)
        changed = True
    elif commit and rnd.random() < 0.03:
        pre = replace(pre, communications_commitment=None)
        changed = True
    circuit = {"version": {"major": 2, "minor": 0}, "num_inputs": num_inputs, "do_communications_commitment": commit,
               "instructions": b.ins}
    return json.dumps(circuit), pre, changed


def _ours(circuit_json: str, pre: ProofPreimage) -> list[int] | None:
    return _ours_why(circuit_json, pre)[0]


def _ours_why(circuit_json: str, pre: ProofPreimage) -> tuple[list[int] | None, str]:
    """Our pi_skip list (``None`` if refused) and, if refused, why."""
    try:
        answer = check(load_circuit(circuit_json.encode()), pre)
    except (CircuitError, MalformedEncoding) as exc:
        return None, exc.message
    if answer and isinstance(answer[-1], str):
        return None, answer[-1]
    return [int(a) for a in answer], ""


def _theirs(midnight: MidnightOracle, circuit_json: str, pre: ProofPreimage) -> list[int] | None:
    try:
        answer = midnight_check(midnight, pre.to_midnight(), {KEY: circuit_json})
    except MidnightError:
        return None
    return [0 if skip is None else skip for skip in answer]


def _theirs_alone(circuit_json: str, pre: ProofPreimage) -> tuple[list[int] | None, bool]:
    """Midnight's check in a node process of its own: (its answer, whether it panicked)."""
    run = subprocess.run(["node", "--input-type=module", "-e", _CHECK_ONCE_JS], cwd=midnight_support.CACHE,
                         input=json.dumps({"circuit": circuit_json, "preimage": pre.to_midnight().hex()}),
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        assert "RuntimeError: unreachable" in run.stderr, run.stderr[-2000:]
        return None, True
    out = run.stdout.strip()
    return (None if out.startswith("refused:") else json.loads(out)), False


def _run(midnight: MidnightOracle, cases: int, op_weights: dict[str, float]) -> Counter[str]:
    seen: Counter[str] = Counter()

    # Hypothesis draws the seed of a plain Random: its own ``randoms()`` favour edge draws (random() == 0.0), which
    # would take every "make it wrong" branch of the builder at once and leave few satisfiable cases.
    @settings(max_examples=cases, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(seed=st.integers(0, (1 << 64) - 1))
    def one(seed: int) -> None:
        circuit_json, pre, changed = _case(random.Random(seed), op_weights)
        ours, why = _ours_why(circuit_json, pre)
        if "point" in why:
            # An input that is not a valid point (a changed value can make a transcript read land on a point's
            # cells): Midnight panics on it, which would kill the shared node process; ask a process of its own.
            theirs, crashed = _theirs_alone(circuit_json, pre)
            seen["midnight panicked"] += crashed
        else:
            theirs = _theirs(midnight, circuit_json, pre)
        assert ours == theirs, (seed, circuit_json, pre)
        seen["cases"] += 1
        seen["accepted" if ours is not None else "refused"] += 1
        seen["changed"] += changed
        seen["commitment"] += json.loads(circuit_json)["do_communications_commitment"]
        for ins in json.loads(circuit_json)["instructions"]:
            seen[f"op:{ins['op']}"] += 1

    one()
    return seen


def _assert_coverage(seen: Counter[str], cases: int) -> None:
    assert seen["cases"] >= cases
    assert seen["accepted"] >= cases // 5 and seen["refused"] >= cases // 5, seen
    assert all(seen[f"op:{op}"] > 0 for op in COVERED), seen
    assert seen["commitment"] >= cases // 10, seen


def test_our_check_agrees_with_midnights_check(midnight: MidnightOracle) -> None:
    seen = _run(midnight, DEFAULT_CASES, WEIGHTS)
    _assert_coverage(seen, DEFAULT_CASES)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # ~10 min on a loaded 2-core machine; a timeout mid-call would desynchronize the oracle
def test_our_check_agrees_with_midnights_check_long(midnight: MidnightOracle) -> None:
    seen = _run(midnight, SLOW_CASES, SLOW_WEIGHTS)
    _assert_coverage(seen, SLOW_CASES)


def test_the_generator_covers_every_op_it_knows_that_we_implement() -> None:
    assert set(COVERED) == set(GENERATORS)  # no generator for an op the synthesizer dropped
    rnd = random.Random(1)
    for _ in range(50):
        circuit_json, pre, _ = _case(rnd)
        load_circuit(circuit_json.encode())
        assert ProofPreimage.from_midnight(pre.to_midnight()) == pre


_CHECK_ONCE_JS = """
import fs from 'node:fs';
const zkir = await import('@midnight-ntwrk/zkir-v2');
const {circuit, preimage} = JSON.parse(fs.readFileSync(0, 'utf8'));
const provider = {
  async lookupKey() { return {proverKey: new Uint8Array(), verifierKey: new Uint8Array(),
                              ir: zkir.jsonIrToBinary(circuit)}; },
  async getParams() { throw new Error('no parameters needed'); },
};
try {
  const skips = await zkir.check(Uint8Array.from(Buffer.from(preimage, 'hex')), provider);
  console.log(JSON.stringify(skips.map((x) => x === undefined ? 0 : Number(x))));
} catch (e) { console.log('refused:', String(e)); }
"""


@pytest.mark.skipif("ec_add" not in OPS, reason="ec_add is not implemented yet")
@pytest.mark.parametrize("name", ["off the curve", "order 2", "(0, 0)"])
def test_invalid_points_crash_midnight_and_we_refuse_them(midnight: MidnightOracle, name: str) -> None:
    """Midnight's check (zkir-v2 2.1.0) does not refuse an invalid input point with an error: its wasm panics
    ("unreachable") and the node process dies.  We refuse the preimage, naming the point."""
    g = jubjub.GENERATOR
    point = {"off the curve": (g[0], (g[1] + 1) % R), "order 2": (0, R - 1), "(0, 0)": (0, 0)}[name]
    circuit = json.dumps({"version": {"major": 2, "minor": 0}, "num_inputs": 2, "do_communications_commitment": False,
                          "instructions": [{"op": "ec_add", "a_x": 0, "a_y": 1, "b_x": 0, "b_y": 1}]})
    pre = ProofPreimage(inputs=point, key_location=KEY)
    answer = check(load_circuit(circuit.encode()), pre)
    assert answer and isinstance(answer[-1], str) and "point" in answer[-1], answer
    assert _theirs_alone(circuit, pre) == (None, True)  # the panic kills its node process
    valid = replace(pre, inputs=g)
    assert _ours(circuit, valid) == _theirs(midnight, circuit, valid) == []
    assert _theirs_alone(circuit, valid) == ([], False)
