"""Prove, check and size requests: the flows behind ``/prove``, ``/check``, ``/k`` and the CLI.

Plain Python over the library stages (ZKIR → R1CS → witness → Groth16), no
gRPC.  Every proof is verified with the verifying key the wallet will use
before it is returned; a proof that does not verify is never returned.
Decoded proving keys are kept in a small LRU keyed by their content hash, so a
worker proving the same circuit again does not re-read or re-decode its key; the
LRU is bounded in bytes (``max_bytes``, estimated by ``prove.key_memory``) as well
as in entries, so a worker's idle footprint stays inside its share of the pool's
memory budget.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import cbor2

from teeprover import zkir
from teeprover.errors import Cancelled, CircuitError, InvalidInput, MalformedEncoding, ProofVerificationFailed
from teeprover.groth16 import encoding
from teeprover.groth16.prove import create_random_proof, key_memory
from teeprover.groth16.types import Proof, ProvingKey, VerifyingKey
from teeprover.groth16.verify import verify
from teeprover.keystore import KeyStore
from teeprover.zkir.preimage import is_midnight_preimage

log = logging.getLogger(__name__)

ShouldStop = Callable[[], bool]
MAX_BATCH = 64


def _never() -> bool:
    return False


class ProvingKeyCache:
    """Least-recently-used cache of decoded proving keys, keyed by the SHA-256 of their bytes.

    At most ``capacity`` keys and ``max_bytes`` of them (None: no byte bound); a key bigger than
    ``max_bytes`` on its own is used for its job and not kept."""

    def __init__(self, capacity: int = 4, max_bytes: int | None = None) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, ProvingKey] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, data: bytes, *, trusted: bool) -> ProvingKey:
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            pk = self._items.get(digest)
            if pk is not None:
                self._items.move_to_end(digest)
                self.hits += 1
                return pk
        self.misses += 1
        pk = encoding.decode_proving_key(data, check_subgroup=not trusted)
        with self._lock:
            self._items[digest] = pk
            self._sizes[digest] = key_memory(pk)
            while len(self._items) > self.capacity or (
                    self.max_bytes is not None and self._items and self.bytes > self.max_bytes):
                old, _ = self._items.popitem(last=False)
                del self._sizes[old]
        return pk

    @property
    def bytes(self) -> int:
        """Estimated resident bytes of the cached keys."""
        return sum(self._sizes.values())


@dataclass(frozen=True)
class ProofResult:
    proof: Proof
    public_inputs: list[int]
    verifying_key: VerifyingKey
    k: int
    timings: dict[str, float]

    def to_cbor(self) -> bytes:
        return encoding.encode_proof(self.proof)


def _stage(should_stop: ShouldStop, name: str) -> None:
    if should_stop():
        raise Cancelled(f"cancelled before {name}")


def _matching(pk: ProvingKey, compiled: zkir.CompiledCircuit) -> None:
    r1cs = compiled.r1cs
    if pk.num_variables != r1cs.num_variables or pk.num_public != r1cs.num_public:
        raise InvalidInput(
            "the proving key does not belong to this circuit",
            details={"key_variables": pk.num_variables, "circuit_variables": r1cs.num_variables,
                     "key_public": pk.num_public, "circuit_public": r1cs.num_public},
        )


class Prover:
    def __init__(self, keystore: KeyStore | None, cache: ProvingKeyCache | None = None) -> None:
        self.keystore = keystore
        self.cache = cache or ProvingKeyCache()

    # -- key material -------------------------------------------------------------------
    def _keys(self, request: zkir.ProveRequest) -> tuple[bytes, bytes, bytes, bool]:
        km = request.key_material
        if km is not None:
            if not km.ir_source or not km.prover_key:
                raise InvalidInput("key material needs ir_source and prover_key")
            return km.ir_source, km.prover_key, km.verifier_key, False
        if self.keystore is None:
            raise InvalidInput("no key material in the request and no key store on this prover")
        files = self.keystore.get(request.preimage.key_location)
        return files.circuit, files.prover_key, files.verifier_key, files.trusted

    # -- flows ------------------------------------------------------------------------------
    def prove(self, request: zkir.ProveRequest, should_stop: ShouldStop = _never) -> ProofResult:
        timings: dict[str, float] = {}
        t = time.perf_counter()
        ir, pk_bytes, vk_bytes, trusted = self._keys(request)
        compiled = zkir.compile_circuit(zkir.load_circuit(ir))
        timings["compile"] = time.perf_counter() - t
        _stage(should_stop, "witness")
        t = time.perf_counter()
        witness, public_inputs = zkir.generate_witness(compiled, request.effective_preimage())
        timings["witness"] = time.perf_counter() - t
        _stage(should_stop, "key loading")
        t = time.perf_counter()
        pk = self.cache.get(pk_bytes, trusted=trusted)
        _matching(pk, compiled)
        vk = encoding.decode_verifying_key(vk_bytes) if vk_bytes else pk.vk
        timings["keys"] = time.perf_counter() - t
        _stage(should_stop, "proving")
        t = time.perf_counter()
        proof = create_random_proof(pk, witness)
        timings["prove"] = time.perf_counter() - t
        t = time.perf_counter()
        if not verify(vk, public_inputs, proof):
            # With a satisfied witness this means the key pair is inconsistent (or a bug): never return it.
            raise ProofVerificationFailed("the proof did not verify against the verifying key; not returned")
        timings["verify"] = time.perf_counter() - t
        return ProofResult(proof, public_inputs, vk, compiled.k, timings)

    def prove_tx(self, body: bytes, should_stop: ShouldStop = _never) -> bytes:
        """Deprecated batch form: a CBOR array of /prove bodies → a CBOR array of proofs."""
        try:
            items = cbor2.loads(body)
        except Exception:  # noqa: BLE001 - cbor2 raises many types on garbage
            raise MalformedEncoding("prove-tx body must be a CBOR array of prove requests") from None
        if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
            raise MalformedEncoding(f"prove-tx body must be a CBOR array of 1..{MAX_BATCH} prove requests")
        proofs = []
        for i, item in enumerate(items):
            try:
                request = zkir.ProveRequest.from_cbor(cbor2.dumps(item))
                proofs.append(self.prove(request, should_stop).to_cbor())
            except CircuitError as exc:
                exc.details["transaction_item"] = i
                raise
        return cbor2.dumps(proofs, canonical=True)

    def check(self, body: bytes) -> list[int | str]:
        """``/check``: a tagged preimage (circuit from the key store) or a full prove request."""
        request = _check_request(body)
        ir, _pk, _vk, _trusted = self._keys(request)
        return zkir.check(zkir.load_circuit(ir), request.effective_preimage())


def _check_request(body: bytes) -> zkir.ProveRequest:
    if body[:1] in (b"\x83",):  # a CBOR array of three: the /prove body form
        return zkir.ProveRequest.from_cbor(body)
    if is_midnight_preimage(body):  # Midnight's own form, as its wallets write it
        return zkir.ProveRequest(zkir.ProofPreimage.from_midnight(body))
    return zkir.ProveRequest(zkir.ProofPreimage.from_cbor(body))


def circuit_k(body: bytes) -> int:
    return zkir.circuit_k(zkir.load_circuit(body))
