"""Job functions for tests/unit/test_pool.py; imported inside pool worker processes.

Each is a registered pool job (``@pool_job``) with the signature ``fn(payload: bytes, should_stop) -> bytes``;
the initializers are plain functions.
"""

from __future__ import annotations

import os
import signal
import time

from services.prover._worker import pool_job
from teeprover.errors import CircuitError, InvalidInput, Overloaded

_calls = 0  # module-level state: survives between jobs on the same worker


@pool_job
def echo(payload: bytes, should_stop) -> bytes:
    return payload


@pool_job
def pid(payload: bytes, should_stop) -> bytes:
    return str(os.getpid()).encode()


@pool_job
def count_calls(payload: bytes, should_stop) -> bytes:
    global _calls
    _calls += 1
    return f"{os.getpid()}:{_calls}".encode()


@pool_job
def staged_sleep(payload: bytes, should_stop) -> bytes:
    """Sleep ``float(payload)`` seconds in 20 ms stages, stopping early when asked."""
    deadline = time.monotonic() + float(payload)
    while time.monotonic() < deadline:
        if should_stop():
            return b"stopped"
        time.sleep(0.02)
    return b"slept"


@pool_job
def stubborn_sleep(payload: bytes, should_stop) -> bytes:
    """Sleep without ever checking should_stop (native code that cannot be interrupted)."""
    time.sleep(float(payload))
    return b"slept"


@pool_job
def sigkill_self(payload: bytes, should_stop) -> bytes:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)
    return b"unreachable"


@pool_job
def hard_exit(payload: bytes, should_stop) -> bytes:
    os._exit(7)


@pool_job
def raise_invalid(payload: bytes, should_stop) -> bytes:
    raise InvalidInput("witness does not satisfy the circuit", details={"input": 3})


@pool_job
def raise_circuit_error(payload: bytes, should_stop) -> bytes:
    raise CircuitError("constraint not satisfied", instruction=12, constraint=40)


@pool_job
def raise_overloaded(payload: bytes, should_stop) -> bytes:
    raise Overloaded("key cache busy", retry_after=7)


@pool_job
def raise_value_error(payload: bytes, should_stop) -> bytes:
    raise ValueError("secret witness " + payload.decode())


@pool_job
def raise_memory_error(payload: bytes, should_stop) -> bytes:
    raise MemoryError()


@pool_job
def return_str(payload: bytes, should_stop) -> bytes:
    return "not bytes"  # type: ignore[return-value]


@pool_job
def read_initialized(payload: bytes, should_stop) -> bytes:
    return os.environ.get("POOL_TEST_INITIALIZED", "no").encode()


def good_initializer() -> None:
    os.environ["POOL_TEST_INITIALIZED"] = "yes"


def failing_initializer() -> None:
    raise RuntimeError("cannot load proving keys")


@pool_job
def hold_memory(payload: bytes, should_stop) -> bytes:
    """Hold ``MiB`` written (so resident) mebibytes for ``seconds``: payload ``b"MiB seconds"``."""
    mib, seconds = payload.split()
    block = b"\x01" * (int(mib) << 20)
    time.sleep(float(seconds))
    return str(len(block)).encode()


@pool_job
def prove_files(payload: bytes, should_stop) -> bytes:
    """Prove the snarkjs files in folder ``payload`` (main.r1cs, main.wtns, main.zkey): a real proof job."""
    from pathlib import Path

    from teeprover.groth16 import encoding
    from teeprover.snarkjs.interop import prove_snarkjs_files

    d = Path(payload.decode())
    proof, _public, _vk = prove_snarkjs_files(d / "main.r1cs", d / "main.wtns", d / "main.zkey")
    return encoding.encode_proof(proof)


def unregistered(payload: bytes, should_stop) -> bytes:
    """The job signature without @pool_job: the pool refuses to run it."""
    return payload
