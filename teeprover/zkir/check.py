"""``/check``: run a circuit on a preimage without proving.

The answer has one entry per ``pi_skip`` executed, in program order: the
number of public inputs the group skipped (``0`` when its guard held and its
inputs were checked against ``public_transcript_inputs``).  When the run
fails, one error string ``"instruction i (op): reason"`` is appended in place
of the group in which the failure happened and the list ends there; a failure
after the last group (e.g. transcripts not fully consumed, wrong number of
inputs) is appended the same way.  So a successful run is all integers and a
failed one ends in exactly one string.

Midnight's ``check`` answers ``Vec<Option<usize>>`` (``None`` = not skipped)
and fails the whole request on error; we answer ``0`` for ``None`` and put the
error in the list, as our public API specifies.
"""

from __future__ import annotations

from teeprover.errors import CircuitError
from teeprover.zkir.ir import Circuit
from teeprover.zkir.preimage import ProofPreimage
from teeprover.zkir.synth import synthesize


def check(circuit: Circuit, preimage: ProofPreimage) -> list[int | str]:
    pi_skips: list[int] = []
    try:
        synthesize(circuit, preimage, pi_skips=pi_skips)
    except CircuitError as exc:
        return [*pi_skips, exc.message]
    answer: list[int | str] = [*pi_skips]
    return answer
