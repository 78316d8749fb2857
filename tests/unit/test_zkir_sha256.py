"""The SHA-256 gadget: FIPS 180-4 / NIST vectors, constraint satisfaction, cost, and soundness."""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict

import pytest

from teeprover.errors import CircuitError
from teeprover.r1cs import R1CS, R
from teeprover.zkir.gadgets import lc, sha256
from teeprover.zkir.gadgets.lc import Synth

# NIST's published examples (FIPS 180-4 / the SHA-256 example documents): message -> digest.
NIST = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
    (b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
]
BUDGET_PER_COMPRESSION = 27_500


def _message(s: Synth, data: bytes | int) -> list[list[lc.LC]]:
    """Fresh boolean variables for each message bit (``data`` an int = the length, for setup mode)."""
    n = data if isinstance(data, int) else len(data)
    out = []
    for j in range(n):
        bits = [s.new_var(None if isinstance(data, int) else data[j] >> i & 1) for i in range(8)]
        for b in bits:
            s.enforce_boolean(lc.var(b))
        out.append([lc.var(b) for b in bits])
    return out


def _build(data: bytes) -> tuple[R1CS, Synth, list[list[lc.LC]]]:
    setup = Synth(0, proving=False)
    sha256.sha256(setup, _message(setup, len(data)))
    prove = Synth(0, proving=True)
    digest = sha256.sha256(prove, _message(prove, data))
    return R1CS(setup.next_var, 0, tuple(setup.constraints)), prove, digest


def _bytes(s: Synth, digest: list[list[lc.LC]]) -> bytes:
    return bytes(sum(s.value(bit) << i for i, bit in enumerate(byte)) for byte in digest)


@pytest.mark.parametrize(("message", "expected"), NIST, ids=["empty", "abc", "448-bit", "896-bit"])
def test_nist_vectors(message: bytes, expected: str) -> None:
    assert sha256.digest(message).hex() == expected
    r1cs, s, digest = _build(message)
    assert _bytes(s, digest).hex() == expected
    r1cs.check_witness(s.z)


@pytest.mark.parametrize("length", [55, 63, 64, 257])
def test_multi_block_messages_and_padding_boundaries(length: int) -> None:
    message = bytes(random.Random(length).randrange(256) for _ in range(length))
    r1cs, s, digest = _build(message)
    assert _bytes(s, digest) == hashlib.sha256(message).digest()
    r1cs.check_witness(s.z)
    assert len(sha256.pad(message)) == 64 * ((length + 8) // 64 + 1)


def test_a_wrong_digest_does_not_satisfy_the_constraints() -> None:
    r1cs, s, digest = _build(b"abc")
    z = list(s.z)
    out_bit = next(iter(digest[0][0]))
    z[out_bit] ^= 1
    with pytest.raises(CircuitError):
        r1cs.check_witness(z)


def _fresh_compression(s: Synth) -> None:
    state = [[lc.var(s.new_var()) for _ in range(32)] for _ in range(8)]
    block = [[lc.var(s.new_var()) for _ in range(32)] for _ in range(16)]
    sha256.compress(s, state, block)


def test_constraints_per_compression_within_budget() -> None:
    s = Synth(0, proving=False)
    _fresh_compression(s)
    # Schedule 48 x (61 + 54 + 35), rounds 64 x (64 + 32 + 64 + 64 + 36 + 36), final 8 x 34 (docs/zkir.md).
    assert len(s.constraints) == 26_416 <= BUDGET_PER_COMPRESSION


@pytest.mark.parametrize("length", [0, 55, 119])
def test_whole_hash_costs_at_most_the_budget_per_block(length: int) -> None:
    s = Synth(0, proving=False)
    message = _message(s, length)
    before = len(s.constraints)  # the 8 booleans per byte are the caller's decomposition, counted apart
    assert before == 8 * length
    sha256.sha256(s, message)
    blocks = len(sha256.pad(bytes(length))) // 64
    assert len(s.constraints) - before <= blocks * 26_416


def test_constant_message_costs_nothing() -> None:
    s = Synth(0, proving=False)
    digest = sha256.sha256(s, [[lc.const(byte >> i & 1) for i in range(8)] for byte in b"abc"])
    assert s.constraints == []
    assert bytes(sum(int(lc.constant_value(b) or 0) << i for i, b in enumerate(byte))
                 for byte in digest) == hashlib.sha256(b"abc").digest()
    assert all(lc.constant_value(b) is not None for byte in digest for b in byte)


def test_witness_mutation_soundness() -> None:
    """Changing any one variable of a satisfying witness breaks the R1CS.

    Every auxiliary variable of the gadget is a function of the message bits (an XOR, ``ch``, ``maj``,
    ``a·b`` or a bit of a sum's decomposition, unique because sums stay far below r), so no change
    yields another valid witness.  A random sample of 300 auxiliary variables, every digest bit and
    every message bit is changed by a random non-zero amount; only the constraints mentioning the
    variable can change, so those are evaluated.
    """
    message = b"The quick brown fox jumps over the lazy dog, twice over: 64+ bytes."
    r1cs, s, digest = _build(message)
    r1cs.check_witness(s.z)
    touching: dict[int, list[int]] = defaultdict(list)
    for i, con in enumerate(r1cs.constraints):
        for v in {*con.a, *con.b, *con.c}:
            touching[v].append(i)
    rng = random.Random(12)
    message_vars = list(range(1, 1 + 8 * len(message)))
    aux = list(range(1 + 8 * len(message), r1cs.num_variables))
    digest_vars = [v for byte in digest for bit in byte for v in bit]
    targets = rng.sample(aux, 300) + digest_vars + message_vars
    assert len(set(digest_vars)) == 256

    def satisfied(z: list[int], i: int) -> bool:
        con = r1cs.constraints[i]
        dot = [sum(c * z[v] for v, c in row.items()) % R for row in (con.a, con.b, con.c)]
        return dot[0] * dot[1] % R == dot[2]

    for v in targets:
        z = list(s.z)
        z[v] = (z[v] + rng.randrange(1, R)) % R
        assert not all(satisfied(z, i) for i in touching[v]), f"variable {v} can change freely"
    z = list(s.z)
    z[digest_vars[0]] ^= 1
    with pytest.raises(CircuitError):
        r1cs.check_witness(z)
