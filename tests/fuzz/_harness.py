"""The fuzz harness: run a decoder on hostile bytes; only documented domain errors may escape.

A *target* is a decoder that takes outside bytes plus a few valid seed inputs.
Inputs are drawn from three sources — byte-level mutations of the seeds (flip,
insert, delete, truncate, splice, overwrite with boundary values), CBOR values
built from scratch that carry the target's own tag, and plain random bytes —
and each call must

* return, or raise a :class:`teeprover.errors.TeeProverError` (anything else is a bug),
* finish within ``DEADLINE_S`` (a SIGALRM watchdog turns a hang into a failure),
* stay within the process memory limit the runner sets (``MemoryError`` is a failure).
"""

from __future__ import annotations

import signal
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import cbor2
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from teeprover.errors import TeeProverError

DEADLINE_S = 10.0  # per call; generous for a loaded CI machine, far below a hang


class FuzzHang(Exception):
    """A decoder call ran past the deadline (not a domain error: fails the target)."""


class BudgetSpent(Exception):
    """The run's wall-clock budget is used up: stop generating (not a bug; the runner reports the count)."""


@dataclass
class Target:
    name: str
    decode: Callable[[bytes], Any]  # may return a value; raising a TeeProverError is the "rejected" outcome
    seeds: Callable[[], Sequence[bytes]]
    cbor_tags: tuple[int, ...] = ()  # structure-aware inputs: random CBOR under these tags
    max_size: int = 4096  # largest random input
    deadline_s: float = DEADLINE_S
    label: Callable[[Any], str] | None = None  # names an accepted outcome (e.g. an attestation's failed step)
    _seed_cache: list[bytes] | None = field(default=None, repr=False)

    def seed_bytes(self) -> list[bytes]:
        if self._seed_cache is None:
            self._seed_cache = [bytes(s) for s in self.seeds()]
            if not self._seed_cache:
                raise RuntimeError(f"fuzz target {self.name} has no seeds")
        return self._seed_cache


@dataclass
class Outcome:
    stop_at: float = float("inf")  # time.monotonic() after which the run stops with BudgetSpent
    calls: int = 0
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    slowest_input: bytes = b""  # kept so that a slow input can be replayed (the long runner writes it out)

    def summary(self) -> str:
        def top(c: Counter[str]) -> str:
            return " (" + ", ".join(f"{n} {k}" for k, n in c.most_common(4)) + ")" if c else ""

        return (f"{self.calls} inputs: {sum(self.accepted.values())} accepted{top(self.accepted)}, "
                f"{sum(self.rejected.values())} rejected{top(self.rejected)}; slowest {self.slowest_s * 1000:.0f} ms")


@contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Raise FuzzHang in this (main) thread if the block runs longer than ``seconds``."""

    def _fire(signum: int, frame: Any) -> None:
        raise FuzzHang(f"decoder still running after {seconds:.1f} s")

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call(target: Target, data: bytes, outcome: Outcome) -> None:
    """One decoder call under the rules above; records the outcome, re-raises anything else."""
    if time.monotonic() > outcome.stop_at:
        raise BudgetSpent(f"budget spent after {outcome.calls} inputs")
    outcome.calls += 1
    start = time.perf_counter()
    try:
        with watchdog(target.deadline_s):
            value = target.decode(data)
    except TeeProverError as exc:
        outcome.rejected[type(exc).__name__] += 1
    else:
        outcome.accepted[target.label(value) if target.label else "decoded"] += 1
    finally:
        elapsed = time.perf_counter() - start
        if elapsed > outcome.slowest_s:
            outcome.slowest_s, outcome.slowest_input = elapsed, bytes(data)


# --------------------------------------------------------------------------- input strategies

_BOUNDARY_WORDS = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFFFFFFFFFF, 1 << 31, 1 << 40]


def _mutate(data: bytes, edits: list[tuple[int, int, int]], splice: bytes) -> bytes:
    out = bytearray(data)
    for kind, pos, value in edits:
        i = pos % (len(out) + 1)
        if kind == 0 and out:  # flip bits
            out[i % len(out)] ^= value or 1
        elif kind == 1:  # insert a byte
            out[i:i] = bytes([value])
        elif kind == 2 and out:  # delete a run
            del out[i:i + 1 + value % 16]
        elif kind == 3:  # truncate
            del out[i:]
        elif kind == 4:  # overwrite 4 or 8 bytes with a boundary value (lengths, counts, section sizes)
            word = _BOUNDARY_WORDS[value % len(_BOUNDARY_WORDS)]
            packed = struct.pack("<Q", word) if value & 0x80 else struct.pack("<I", word & 0xFFFFFFFF)
            out[i:i + len(packed)] = packed
        elif kind == 5:  # splice in foreign bytes
            out[i:i] = splice
        elif kind == 6 and out:  # duplicate a chunk (repeated sections, repeated keys)
            j = (i + value) % (len(out) + 1)
            out[i:i] = out[min(i, j):max(i, j)][:512]
    return bytes(out)


def mutated(target: Target) -> st.SearchStrategy[bytes]:
    edit = st.tuples(st.integers(0, 6), st.integers(0, 1 << 24), st.integers(0, 255))
    return st.builds(_mutate, st.sampled_from(target.seed_bytes()), st.lists(edit, min_size=1, max_size=6),
                     st.binary(max_size=64))


def _cbor_values(tags: tuple[int, ...]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.binary(max_size=120),
        st.text(max_size=40), st.floats(allow_nan=True), st.sampled_from([b"\x00" * 32, b"\xff" * 32, b"\x00" * 48,
                                                                           b"\xc0" + b"\x00" * 47, b"\xff" * 96]),
    )

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        keys = st.one_of(st.text(max_size=30), st.sampled_from([
            "inputs", "private_transcript", "public_transcript_inputs", "public_transcript_outputs",
            "binding_input", "communications_commitment", "key_location", "prover_key", "verifier_key",
            "ir_source", "version", "num_inputs", "do_communications_commitment", "instructions", "op"]))
        tagged = st.builds(cbor2.CBORTag, st.sampled_from(tags or (0,)), children) if tags else st.nothing()
        return st.one_of(st.lists(children, max_size=6), st.dictionaries(keys, children, max_size=8), tagged)

    return st.recursive(scalars, extend, max_leaves=40)


def structured(target: Target) -> st.SearchStrategy[bytes]:
    value = _cbor_values(target.cbor_tags)
    if target.cbor_tags:
        value = st.one_of(value, st.builds(cbor2.CBORTag, st.sampled_from(target.cbor_tags), value))
    return value.map(lambda v: cbor2.dumps(v))


def inputs(target: Target) -> st.SearchStrategy[bytes]:
    sources = [mutated(target), st.binary(max_size=target.max_size)]
    if target.cbor_tags:
        sources.append(structured(target))
    return st.one_of(*sources)


def hypothesis_settings(examples: int, *, derandomize: bool = False) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
                    suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    print_blob=True)


def run(target: Target, examples: int, outcome: Outcome | None = None, *, derandomize: bool = False) -> Outcome:
    """Fuzz ``target`` for ``examples`` generated inputs (plus every seed once); raise on the first bug.

    ``derandomize`` makes the run repeatable (the short run in ``make test``, so CI is not flaky);
    the long run (``make fuzz``) explores new inputs every time.
    """
    outcome = outcome or Outcome()
    for seed in target.seed_bytes():  # the seeds themselves must decode (or be cleanly rejected)
        call(target, seed, outcome)

    @hypothesis_settings(examples, derandomize=derandomize)
    @given(data=inputs(target))
    def property_(data: bytes) -> None:
        call(target, data, outcome)

    try:
        property_()
    except BaseExceptionGroup as group:
        # Hypothesis sees BudgetSpent as a failure, replays it and, as the replay differs, wraps it in a
        # FlakyFailure group: a group of nothing but BudgetSpent is the budget, not a bug.
        _, rest = group.split(BudgetSpent)
        if rest is None:
            raise BudgetSpent(f"budget spent after {outcome.calls} inputs") from None
        raise
    return outcome
