"""Real wallet preimages from ``@midnight-ntwrk/ledger-v8`` (tests/support/midnight_wallet.py).

What a wallet sends a proof server for a zswap output, a zswap spend and a dust spend decodes with our codec,
re-encodes byte for byte, and Midnight's ``check`` accepts it against the corpus circuit named by its key
location, and so does ours with the same pi_skip list; the same preimage with one public transcript value
changed is refused by both.  Proving them through REST is the lead's end-to-end test (issue 12 item 4).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from teeprover.zkir import check, load_circuit, load_preimage
from teeprover.zkir.preimage import ProofPreimage
from tests.support.midnight import MidnightError, MidnightOracle
from tests.support.midnight_wallet import (
    BUILTIN_CIRCUITS,
    KEY_LOCATIONS,
    WalletPreimage,
    capture_wallet_preimages,
    midnight_check,
    read_wallet_preimages,
)

KEPT = read_wallet_preimages()


def _assert_is_a_wallet_preimage(loc: str, wallet: WalletPreimage) -> ProofPreimage:
    pre = load_preimage(wallet.preimage)
    assert pre.key_location == loc
    assert pre.to_midnight() == wallet.preimage
    circuit = json.loads(BUILTIN_CIRCUITS[loc].read_text())
    assert len(pre.inputs) == circuit["num_inputs"]
    assert pre.communications_commitment is None  # zswap and dust circuits do not commit communications
    effective = ProofPreimage.from_midnight(wallet.effective())
    if wallet.overwrite_binding_input is None:
        assert effective == pre
    else:
        assert effective == replace(pre, binding_input=wallet.overwrite_binding_input)
    return pre


def test_the_kept_captures_cover_zswap_and_dust() -> None:
    assert sorted(KEPT) == sorted(KEY_LOCATIONS)
    assert KEPT["midnight/dust/spend"].overwrite_binding_input is not None  # ledger-v8 binds dust spends so


@pytest.mark.parametrize("loc", KEY_LOCATIONS)
def test_kept_wallet_preimage_is_checked_alike_by_midnight_and_by_us(midnight: MidnightOracle, loc: str) -> None:
    wallet = KEPT[loc]
    pre = _assert_is_a_wallet_preimage(loc, wallet)
    skips = midnight_check(midnight, wallet.effective())
    assert skips and all(s is None or s > 0 for s in skips)
    assert len(skips) == sum(1 for ins in json.loads(BUILTIN_CIRCUITS[loc].read_text())["instructions"]
                             if ins["op"] == "pi_skip")
    # One public transcript value off by one: Midnight refuses it (so the acceptance above means something).
    wrong = list(pre.public_transcript_inputs)
    wrong[len(wrong) // 2] = (wrong[len(wrong) // 2] + 1) % (1 << 64)
    bad = replace(ProofPreimage.from_midnight(wallet.effective()), public_transcript_inputs=tuple(wrong))
    with pytest.raises(MidnightError, match="mismatch"):
        midnight_check(midnight, bad.to_midnight())
    # Ours: the same pi_skip list, and the same refusal, naming the mismatch.
    circuit = load_circuit(BUILTIN_CIRCUITS[loc].read_bytes())
    assert check(circuit, ProofPreimage.from_midnight(wallet.effective())) == [0 if s is None else s for s in skips]
    refused = check(circuit, bad)
    assert isinstance(refused[-1], str) and "mismatch" in refused[-1], refused[-1]


def test_a_fresh_capture_from_ledger_v8(midnight: MidnightOracle) -> None:
    fresh = capture_wallet_preimages(midnight, refresh=True)
    assert sorted(fresh) == sorted(KEY_LOCATIONS)
    for loc, wallet in fresh.items():
        pre = _assert_is_a_wallet_preimage(loc, wallet)
        kept = load_preimage(KEPT[loc].preimage)
        assert (len(pre.public_transcript_inputs), len(pre.private_transcript)) == \
            (len(kept.public_transcript_inputs), len(kept.private_transcript))
        assert midnight_check(midnight, wallet.effective())
    assert capture_wallet_preimages(midnight) == fresh  # the cache answers the next call
