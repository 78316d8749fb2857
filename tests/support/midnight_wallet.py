"""Real wallet preimages from Midnight's own ledger (``@midnight-ntwrk/ledger-v8``), and Midnight's ``check``.

:func:`capture_wallet_preimages` runs, in the Midnight oracle's node process, what a wallet does to pay
itself one shielded coin and then spend it::

    sk    = ZswapSecretKeys.fromSeed(seed)
    out   = ZswapOutput.new(coin, 0, sk.coinPublicKey, sk.encryptionPublicKey)
    offer = ZswapOffer.fromOutput(out, ...)          -> Transaction.fromParts('undeployed', offer).prove(...)
    state = new ZswapLocalState().apply(sk, offer)
    [_, input] = state.spend(sk, coin, 0)            -> Transaction.fromParts('undeployed', fromInput(input)).prove(...)

and a dust spend: a ``DustLocalState`` given one dust UTXO of its own and the Night generation entry backing it
(``insertGenerationInfo``, ``insertCommitment``, ``addUtxo`` — what replaying the chain's dust events gives a
wallet), then ``DustLocalState.spend`` and an intent whose ``dustActions`` carry the spend.

``prove`` is given a provider whose ``prove(serializedPreimage, keyLocation, overwriteBindingInput)`` records
what a wallet sends to a proof server and answers an empty ``midnight:proof[v5]:`` (ledger-v8 only
deserializes it while assembling the transaction, it does not verify it).  The result maps each key location
(``midnight/zswap/output``, ``midnight/zswap/spend``, ``midnight/dust/spend``) to a :class:`WalletPreimage`:
Midnight's ``midnight:proof-preimage:`` bytes (:meth:`teeprover.zkir.preimage.ProofPreimage.from_midnight`
reads them) and the binding input to overwrite (ledger-v8 sets one for the dust spend).  Captures are cached
in ``.cache/midnight-wallet`` (``refresh=True`` for fresh ones: nonces and randomness differ each time).

:func:`midnight_check` runs ``check`` of ``@midnight-ntwrk/zkir-v2`` (Midnight's preprocess) on Midnight's
bytes against ZKIR JSON looked up by key location, with empty keys; it returns the pi_skip list
(``None`` = not skipped) or raises :class:`~tests.support.midnight.MidnightError` with Midnight's message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from teeprover.zkir.preimage import ProofPreimage
from tests.support.midnight import MidnightOracle
from tests.support.npm import REPO

CACHE = REPO / ".cache" / "midnight-wallet"
CORPUS = REPO / "tests" / "fixtures" / "midnight"
FIXTURE = CORPUS / "preimages" / "wallet.json"  # one capture kept with the corpus (see its README)
# Where Midnight's proof server finds each built-in circuit (key location -> our copy of Midnight's file).
BUILTIN_CIRCUITS = {
    "midnight/zswap/spend": CORPUS / "zswap" / "static" / "spend.zkir",
    "midnight/zswap/output": CORPUS / "zswap" / "static" / "output.zkir",
    "midnight/zswap/sign": CORPUS / "zswap" / "static" / "sign.zkir",
    "midnight/dust/spend": CORPUS / "ledger" / "static" / "dust" / "spend.zkir",
}

# Oracle bodies are plain functions whose result the oracle awaits, hence the async arrow around them.
_CAPTURE_JS = r"""
return (async () => {
const [seedHex] = args;
const seed = Uint8Array.from(Buffer.from(seedHex, 'hex'));
const sk = ledger.ZswapSecretKeys.fromSeed(seed);
const token = ledger.shieldedToken().raw;
const coin = ledger.createShieldedCoinInfo(token, 1000n);
const captured = [];
const provider = {
  async check(preimage, keyLocation) { throw new Error('check is not expected while proving'); },
  async prove(preimage, keyLocation, overwriteBindingInput) {
    captured.push([keyLocation, Uint8Array.from(preimage), overwriteBindingInput]);
    // An empty Proof, tagged as ledger-v8 deserializes it: 'midnight:proof[v5]:' + Vec<u8> of length 0.
    return Uint8Array.from([...Buffer.from('midnight:proof[v5]:'), 0]);
  },
};
const costModel = ledger.CostModel.initialCostModel();
const output = ledger.ZswapOutput.new(coin, 0, sk.coinPublicKey, sk.encryptionPublicKey);
const outputOffer = ledger.ZswapOffer.fromOutput(output, token, 1000n);
await ledger.Transaction.fromParts('undeployed', outputOffer).prove(provider, costModel);
const state = new ledger.ZswapLocalState().apply(sk, outputOffer);
const [qualified] = [...state.coins];
const [, input] = state.spend(sk, qualified, 0);
const spendOffer = ledger.ZswapOffer.fromInput(input, token, 1000n);
await ledger.Transaction.fromParts('undeployed', spendOffer).prove(provider, costModel);

// Dust: a DustLocalState tracking one dust UTXO of its own, backed by one Night generation entry (what replaying
// the chain's dust events would give it), then DustLocalState.spend and an intent carrying the DustSpend.
const dsk = ledger.DustSecretKey.fromSeed(seed);
const params = new ledger.DustParameters(5000000000n, 8267n, 10800n);
const ctime = new Date(1700000000000);
const backingNight = '11'.repeat(32);
const qdo = {initialValue: 0n, owner: dsk.publicKey, nonce: 5n, seq: 0, ctime, backingNight, mtIndex: 0n};
let dust = new ledger.DustLocalState(params)
  .insertGenerationInfo(0n, {value: 1000000000n, owner: dsk.publicKey, nonce: backingNight, dtime: undefined},
                        backingNight)
  .insertCommitment(0n, qdo, true);
dust = dust.addUtxo(ledger.dustNullifier(qdo, dsk), qdo);
const now = new Date(ctime.getTime() + 3600000);
const [, dustSpend] = dust.spend(dsk, qdo, 1n, now);
const intent = ledger.Intent.new(new Date(now.getTime() + 600000));
intent.dustActions = new ledger.DustActions('signature', 'pre-proof', now, [dustSpend], []);
await ledger.Transaction.fromParts('undeployed', undefined, undefined, intent).prove(provider, costModel);
return captured;
})();
"""

_CHECK_JS = r"""
return (async () => {
const [preimage, irByLocation] = args;
const provider = {
  async lookupKey(keyLocation) {
    const json = irByLocation[keyLocation];
    if (json === undefined) return undefined;
    return {proverKey: new Uint8Array(), verifierKey: new Uint8Array(), ir: zkir.jsonIrToBinary(json)};
  },
  async getParams(k) { throw new Error('check needs no parameters'); },
};
return await zkir.check(preimage, provider);
})();
"""

@dataclass(frozen=True)
class WalletPreimage:
    """What a wallet hands a proof server for one proof: Midnight's preimage bytes, and the binding input the
    ledger asks to put in place of the preimage's own (``overwriteBindingInput``; set for dust spends)."""

    preimage: bytes
    overwrite_binding_input: int | None = None

    def effective(self) -> bytes:
        """The preimage actually proved: the bytes with the binding input overwritten (Midnight's form)."""
        if self.overwrite_binding_input is None:
            return self.preimage
        parsed = ProofPreimage.from_midnight(self.preimage)
        return replace(parsed, binding_input=self.overwrite_binding_input).to_midnight()


KEY_LOCATIONS = ("midnight/zswap/output", "midnight/zswap/spend", "midnight/dust/spend")


def capture_wallet_preimages(oracle: MidnightOracle, *, seed: bytes = bytes(31) + b"\x07",
                             refresh: bool = False) -> dict[str, WalletPreimage]:
    """What ledger-v8 sends a proof server for a zswap output, a zswap spend and a dust spend, by key location.

    Cached in ``.cache/midnight-wallet/captured.json`` (``refresh=True`` captures anew)."""
    cache = CACHE / "captured.json"
    if not refresh and cache.exists():
        return read_wallet_preimages(cache)
    captured = {loc: WalletPreimage(bytes(pre), overwrite)
                for loc, pre, overwrite in oracle.run(_CAPTURE_JS, seed.hex())}
    if sorted(captured) != sorted(KEY_LOCATIONS):
        raise RuntimeError(f"ledger-v8 asked for proofs of {sorted(captured)}, expected {sorted(KEY_LOCATIONS)}")
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({loc: {"preimage": w.preimage.hex(), "overwrite_binding_input":
                                     None if w.overwrite_binding_input is None else str(w.overwrite_binding_input)}
                               for loc, w in captured.items()}, indent=1))
    tmp.replace(cache)
    return captured


def read_wallet_preimages(path: Path = FIXTURE) -> dict[str, WalletPreimage]:
    """Captures saved as JSON (``{key_location: {preimage: hex, overwrite_binding_input: decimal | null}}``);
    by default the ones kept with the corpus (tests/fixtures/midnight/preimages/wallet.json)."""
    doc = json.loads(path.read_text())
    return {loc: WalletPreimage(bytes.fromhex(e["preimage"]), None if e["overwrite_binding_input"] is None
                                else int(e["overwrite_binding_input"])) for loc, e in doc.items()}


def midnight_check(oracle: MidnightOracle, preimage: bytes,
                   circuits: dict[str, bytes | str | Path] | None = None) -> list[int | None]:
    """Midnight's ``check`` of ``preimage`` (Midnight's bytes); ``circuits`` maps key location -> ZKIR JSON
    (text, bytes or a path; default :data:`BUILTIN_CIRCUITS`)."""
    table = BUILTIN_CIRCUITS if circuits is None else circuits
    ir = {loc: (src.read_text() if isinstance(src, Path) else src.decode() if isinstance(src, bytes) else src)
          for loc, src in table.items()}
    answer = oracle.run(_CHECK_JS, preimage, ir)
    assert isinstance(answer, list)
    return answer

