"""Worker-side job functions (run inside the pool's processes; this module is imported once per worker).

Each job is a registered function (``@pool_job``) that takes the request body and a
``should_stop`` callable checked between stages; it returns the reply bytes or raises a
domain error that the pool carries back to the caller unchanged.  The per-worker
:class:`teeprover.proving.Prover` keeps the proving-key LRU warm between jobs.  What a
job's reply carries besides the answer (the proof's header) is defined here, with the job.
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from services.common import config as cfgmod
from services.common import logs
from services.prover._worker import pool_job
from services.prover.pool import default_memory_budget, key_cache_bytes

if TYPE_CHECKING:
    from teeprover.proving import Prover

log = logging.getLogger("teeprover.worker")
WORKER_NICENESS = 10
_prover: Prover | None = None

# prove's reply starts with (k, seconds spent proving in the worker), for the proof-time-by-k metric.
PROOF_HEADER = struct.Struct(">Bd")


def split_proof_reply(reply: bytes) -> tuple[int, float, bytes]:
    """(k, seconds, proof bytes) from a :func:`prove` reply; the header never leaves the prover."""
    k, seconds = PROOF_HEADER.unpack_from(reply)
    return k, seconds, reply[PROOF_HEADER.size:]


def init() -> None:
    """Pool initializer: JSON logs and the worker's prover (key store from the same configuration)."""
    global _prover
    from teeprover.keystore import KeyStore
    from teeprover.proving import Prover, ProvingKeyCache

    config = cfgmod.load(cfgmod.ProverConfig)
    logs.setup("prover-worker", config.log_level)
    # Proofs yield the CPU to the control plane: /health, /ready and the queue stay responsive
    # while every core proves (measured: /health p95 through Envoy 26 ms → 12 ms on 2 cores).
    os.nice(WORKER_NICENESS)
    budget = config.memory_budget or default_memory_budget()
    cache = ProvingKeyCache(max_bytes=key_cache_bytes(budget, config.num_workers))
    _prover = Prover(KeyStore(config.keys_dir or config.cache_dir / "keys"), cache)


def _get() -> Prover:
    if _prover is None:
        init()
    assert _prover is not None
    return _prover


@pool_job
def k(body: bytes, should_stop: Callable[[], bool]) -> bytes:
    from teeprover.proving import circuit_k

    return str(circuit_k(body)).encode()


@pool_job
def check(body: bytes, should_stop: Callable[[], bool]) -> bytes:
    import cbor2

    return cbor2.dumps(_get().check(body), canonical=True)


@pool_job
def prove(body: bytes, should_stop: Callable[[], bool]) -> bytes:
    """The proof, prefixed with :data:`PROOF_HEADER` (k, seconds) for the proof-time-by-k metric.

    The header never leaves the prover: :func:`split_proof_reply` strips it.
    """
    from teeprover import zkir

    start = time.perf_counter()
    result = _get().prove(zkir.ProveRequest.from_cbor(body), should_stop)
    seconds = time.perf_counter() - start
    log.info("proof generated", extra={"k": result.k, "seconds": round(seconds, 3),
                                       "stages": {k: round(v, 3) for k, v in result.timings.items()}})
    return PROOF_HEADER.pack(result.k, seconds) + result.to_cbor()


@pool_job
def prove_tx(body: bytes, should_stop: Callable[[], bool]) -> bytes:
    return _get().prove_tx(body, should_stop)
