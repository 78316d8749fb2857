"""Generate ``teeprover/zkir/gadgets/poseidon_constants.json``: Midnight's Poseidon constants for BLS12-381's Fr.

Midnight (midnight-zk ``circuits/src/hash/poseidon/constants/blstrs.rs``) ships its round
constants and MDS matrix as literals and records how they were made: the Poseidon authors'
reference parameter script ``generate_parameters_grain.sage`` with the arguments
``1 0 255 3 8 60 r`` (prime field, S-box x^alpha, 255-bit elements, width 3, 8 full and 60
partial rounds).  This script re-runs that procedure:

* an 80-bit Grain LFSR seeded with those parameters (2, 4, 12, 12, 10, 10 bits, MSB first)
  followed by thirty 1 bits, clocked 160 times and then used in self-shrinking mode
  (of each pair of output bits the second is kept when the first is 1);
* each round constant is 255 bits read MSB first, redrawn while ``>= r`` (rejection);
* the MDS matrix is the Cauchy matrix ``1 / (x_i + y_j)`` over six further 255-bit draws
  reduced mod r (no rejection).  Midnight's file records that this first candidate passes
  the script's three security checks, so no further candidate is drawn.

Run ``python tools/gen_poseidon_constants.py`` to rewrite the file, ``--check`` to verify the
committed file is what the procedure gives, and ``--rust PATH`` to also compare against the
literals of a checkout's ``blstrs.rs`` (little-endian 64-bit limbs in ``from_raw``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
FIELD_PRIME, SBOX_POWER, FIELD_BITS, WIDTH, FULL_ROUNDS, PARTIAL_ROUNDS = 1, 0, 255, 3, 8, 60
ALPHA = 5
RATE = 2

OUT = Path(__file__).resolve().parent.parent / "teeprover" / "zkir" / "gadgets" / "poseidon_constants.json"


def grain_bits(params: list[tuple[int, int]]) -> Iterator[int]:
    """The reference script's Grain LFSR in self-shrinking mode."""
    state = [int(c) for value, width in params for c in format(value, f"0{width}b")] + [1] * 30
    assert len(state) == 80

    def clock() -> int:
        bit = state[62] ^ state[51] ^ state[38] ^ state[23] ^ state[13] ^ state[0]
        state.pop(0)
        state.append(bit)
        return bit

    for _ in range(160):
        clock()
    while True:
        keep = clock()
        bit = clock()
        if keep:
            yield bit


def generate() -> tuple[list[int], list[list[int]]]:
    """The round constants (flat, round by round) and the MDS matrix."""
    bits = grain_bits([(FIELD_PRIME, 2), (SBOX_POWER, 4), (FIELD_BITS, 12), (WIDTH, 12),
                       (FULL_ROUNDS, 10), (PARTIAL_ROUNDS, 10)])

    def draw() -> int:
        x = 0
        for _ in range(FIELD_BITS):
            x = (x << 1) | next(bits)
        return x

    flat = []
    for _ in range((FULL_ROUNDS + PARTIAL_ROUNDS) * WIDTH):
        x = draw()
        while x >= R:
            x = draw()
        flat.append(x)
    cauchy = [draw() % R for _ in range(2 * WIDTH)]
    if len(set(cauchy)) != len(cauchy):  # the script redraws then; it does not happen for these parameters
        raise SystemExit("duplicate Cauchy points: this generator does not implement the redraw")
    xs, ys = cauchy[:WIDTH], cauchy[WIDTH:]
    mds = [[pow(xs[i] + ys[j], -1, R) for j in range(WIDTH)] for i in range(WIDTH)]
    return flat, mds


def render() -> bytes:
    flat, mds = generate()
    doc = {
        "source": "midnight-zk circuits/src/hash/poseidon/constants/blstrs.rs; "
                  "generate_parameters_grain.sage 1 0 255 3 8 60 r (tools/gen_poseidon_constants.py)",
        "modulus": hex(R),
        "width": WIDTH,
        "rate": RATE,
        "full_rounds": FULL_ROUNDS,
        "partial_rounds": PARTIAL_ROUNDS,
        "alpha": ALPHA,
        "round_constants": [[hex(x) for x in flat[i:i + WIDTH]] for i in range(0, len(flat), WIDTH)],
        "mds": [[hex(x) for x in row] for row in mds],
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def rust_literals(text: str) -> list[int]:
    """The field elements of a ``blstrs.rs``, in file order (204 round constants, then the 9 MDS entries)."""
    limb = r"(0x[0-9a-fA-F_]+)"
    pattern = re.compile(r"from_raw\(\[\s*" + r",\s*".join([limb] * 4) + r",?\s*\]\)")
    return [sum(int(g.replace("_", ""), 16) << (64 * i) for i, g in enumerate(m.groups()))
            for m in pattern.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="verify the committed file instead of writing it")
    parser.add_argument("--stdout", action="store_true", help="print the file instead of writing it")
    parser.add_argument("--rust", type=Path, help="also compare against the literals of this blstrs.rs")
    args = parser.parse_args(argv)
    data = render()
    if args.rust is not None:
        flat, mds = generate()
        want = flat + [x for row in mds for x in row]
        if rust_literals(args.rust.read_text()) != want:
            print(f"{args.rust}: literals differ from the Grain procedure", file=sys.stderr)
            return 1
        print(f"{args.rust}: all {len(want)} literals match", file=sys.stderr)
    if args.stdout:
        sys.stdout.buffer.write(data)
    elif args.check:
        if OUT.read_bytes() != data:
            print(f"{OUT} is not what the procedure generates; rerun tools/gen_poseidon_constants.py",
                  file=sys.stderr)
            return 1
    else:
        OUT.write_bytes(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
