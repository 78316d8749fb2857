"""Job functions for tests/unit/test_pool.py; imported inside pool worker processes.

Each has the pool's job signature ``fn(payload: bytes, should_stop) -> bytes``.
"""

from __future__ import annotations

import os
import signal
import time

from teeprover.errors import CircuitError, InvalidInput, Overloaded

_calls = 0  # module-level state: survives between jobs on the same worker


def echo(payload: bytes, should_stop) -> bytes:
    return payload


def pid(payload: bytes, should_stop) -> bytes:
    return str(os.getpid()).encode()


def count_calls(payload: bytes, should_stop) -> bytes:
    global _calls
    _calls += 1
    return f"{os.getpid()}:{_calls}".encode()


def staged_sleep(payload: bytes, should_stop) -> bytes:
    """Sleep ``float(payload)`` seconds in 20 ms stages, stopping early when asked."""
    deadline = time.monotonic() + float(payload)
    while time.monotonic() < deadline:
        if should_stop():
            return b"stopped"
        time.sleep(0.02)
    return b"slept"


def stubborn_sleep(payload: bytes, should_stop) -> bytes:
    """Sleep without ever checking should_stop (native code that cannot be interrupted)."""
    time.sleep(float(payload))
    return b"slept"


def sigkill_self(payload: bytes, should_stop) -> bytes:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)
    return b"unreachable"


def hard_exit(payload: bytes, should_stop) -> bytes:
    os._exit(7)


def raise_invalid(payload: bytes, should_stop) -> bytes:
    raise InvalidInput("witness does not satisfy the circuit", details={"input": 3})


def raise_circuit_error(payload: bytes, should_stop) -> bytes:
    raise CircuitError("constraint not satisfied", instruction=12, constraint=40)


def raise_overloaded(payload: bytes, should_stop) -> bytes:
    raise Overloaded("key cache busy", retry_after=7)


def raise_value_error(payload: bytes, should_stop) -> bytes:
    raise ValueError("secret witness " + payload.decode())


def raise_memory_error(payload: bytes, should_stop) -> bytes:
    raise MemoryError()


def return_str(payload: bytes, should_stop) -> bytes:
    return "not bytes"  # type: ignore[return-value]


def read_initialized(payload: bytes, should_stop) -> bytes:
    return os.environ.get("POOL_TEST_INITIALIZED", "no").encode()


def good_initializer() -> None:
    os.environ["POOL_TEST_INITIALIZED"] = "yes"


def failing_initializer() -> None:
    raise RuntimeError("cannot load proving keys")


def hold_memory(payload: bytes, should_stop) -> bytes:
    """Hold ``MiB`` written (so resident) mebibytes for ``seconds``: payload ``b"MiB seconds"``."""
    mib, seconds = payload.split()
    block = b"\x01" * (int(mib) << 20)
    time.sleep(float(seconds))
    return str(len(block)).encode()


def prove_files(payload: bytes, should_stop) -> bytes:
    """Prove the snarkjs files in folder ``payload`` (main.r1cs, main.wtns, main.zkey): a real proof job."""
    from pathlib import Path

    from teeprover.groth16 import encoding
    from teeprover.snarkjs.interop import prove_snarkjs_files

    d = Path(payload.decode())
    proof, _public, _vk = prove_snarkjs_files(d / "main.r1cs", d / "main.wtns", d / "main.zkey")
    return encoding.encode_proof(proof)
