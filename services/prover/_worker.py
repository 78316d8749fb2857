"""The child side of the prover worker pool, and the wire protocol both sides share.

A worker is a process started by :class:`services.prover.pool.WorkerPool` with the
``spawn`` or ``forkserver`` start method. It owns one duplex pipe to the parent
and one ``multiprocessing.Event`` (its stop flag). Messages are tuples:

    parent -> worker   ("run", job_id, job_name, payload)   ("stop",)
    worker -> parent   ("mem", resident_bytes, peak_bytes)  before "ready" and before every "done"
                       ("ready", pid)
                       ("done", job_id, retiring, "ok", result_bytes)
                       ("done", job_id, retiring, "cancelled")
                       ("done", job_id, retiring, "error", class_path, message, details, attrs)

``retiring`` is True when the worker exits right after this reply (after a
MemoryError), so the parent gives it no further job.

Memory: "mem" carries the worker's resident set (``VmRSS``) and its peak since the last
job started (``VmHWM``, reset through ``/proc/self/clear_refs`` when a job starts; where
that is refused the peak is the process's lifetime peak, which only overstates). Before
reporting, freed heap is handed back to the OS (glibc ``malloc_trim``), so an idle worker's
figure is what it really keeps: interpreter, modules and cached keys. The pool's memory
budget is built on these figures (``services/prover/pool.py``).

Jobs are registered functions: a module-level function decorated with :func:`pool_job`.
The pool takes the function itself; on the pipe it is named ``"module:qualname"``
(:func:`job_name`) and a worker runs only a name that its module registered, so the
parent cannot make a worker call anything else.

Warm state: each job function's module is imported once per worker process and
the resolved function is reused, so module-level caches (an LRU of decoded
proving keys, a loaded native library) survive between jobs on that worker.

Privacy: payloads and results are never logged. When a job function raises an
exception that is not a domain error, the worker logs its type and stack frames
but not its message, because messages of arbitrary exceptions may quote witness
data; the caller gets a generic ``InternalError``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import logging
import os
import pickle
import signal
import traceback
from collections.abc import Callable
from typing import Any

from teeprover.errors import Cancelled, InternalError, TeeProverError

logger = logging.getLogger("teeprover.prover.worker")

JobFunction = Callable[[bytes, Callable[[], bool]], bytes]

GENERIC_INTERNAL_MESSAGE = "internal error in proof worker"
OUT_OF_MEMORY_MESSAGE = "proof worker ran out of memory"
# Exit code of a worker that recycled itself after a MemoryError.
EXIT_AFTER_MEMORY_ERROR = 3

_SAFE_ATTR_TYPES = (bool, int, float, str, type(None))


_JOBS: dict[str, JobFunction] = {}  # job_name -> function, filled by @pool_job as modules are imported


def job_name(fn: Callable[..., Any]) -> str:
    """``"module:qualname"``: how a job is named on the pipe and in the pool's memory history."""
    return f"{fn.__module__}:{fn.__qualname__}"


def pool_job(fn: JobFunction) -> JobFunction:
    """Register a module-level function ``fn(payload, should_stop) -> bytes`` as a job the pool may run."""
    _JOBS[job_name(fn)] = fn
    return fn


def registered_name(fn: Callable[..., Any]) -> str:
    """The name of a registered job; ``ValueError`` for anything else (an import string included)."""
    name = job_name(fn) if callable(fn) else repr(fn)
    if not callable(fn) or _JOBS.get(name) is not fn:
        raise ValueError(f"{name} is not a registered pool job (decorate it with @pool_job)")
    return name


def resolve_function(name: str) -> JobFunction:
    """The registered job ``name`` (its module imported here, which registers it)."""
    module_name, sep, _ = name.partition(":")
    if not sep or not module_name:
        raise ValueError(f"job name must be 'module:qualname', got {name!r}")
    importlib.import_module(module_name)
    fn = _JOBS.get(name)
    if fn is None:
        raise ValueError(f"{name} is not a registered pool job")
    return fn


# --------------------------------------------------------------------------- errors


def encode_error(exc: TeeProverError) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """A domain error as plain data: class path, message, details, simple extra attributes.

    Only the class *path* crosses the pipe, never a pickled exception, so the parent
    does not unpickle arbitrary objects built by job code. Extra attributes (e.g.
    ``Overloaded.retry_after``, ``CircuitError.instruction``) are kept when they are
    plain scalars.
    """
    cls = type(exc)
    attrs = {k: v for k, v in vars(exc).items() if k not in ("message", "details") and isinstance(v, _SAFE_ATTR_TYPES)}
    details = dict(exc.details)
    try:
        pickle.dumps(details)
    except Exception:
        details = {}
    return f"{cls.__module__}:{cls.__qualname__}", str(exc.message), details, attrs


def decode_error(class_path: str, message: str, details: dict[str, Any], attrs: dict[str, Any]) -> TeeProverError:
    """Rebuild a domain error in the parent; anything unexpected becomes a generic InternalError."""
    try:
        cls: Any = resolve_class(class_path)
    except Exception:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, TeeProverError)):
        return InternalError(GENERIC_INTERNAL_MESSAGE)
    try:
        err = cls(message, details=details)
    except TypeError:  # a subclass with a different constructor
        err = cls.__new__(cls)
        TeeProverError.__init__(err, message, details=details)
    for key, value in attrs.items():
        try:
            setattr(err, key, value)
        except Exception:  # read-only property and the like
            pass
    return err  # type: ignore[no-any-return]


def resolve_class(class_path: str) -> object:
    module_name, _, qualname = class_path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# --------------------------------------------------------------------------- memory


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in bytes; 0 where there is no /proc."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(field.encode() + b":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def resident_bytes() -> int:
    return _status_bytes("VmRSS")


def peak_bytes() -> int:
    """Peak resident set since :func:`reset_peak` (or since the process started)."""
    return max(_status_bytes("VmHWM"), resident_bytes())


def reset_peak() -> bool:
    """Restart the peak at the current resident set (Linux: ``5`` into clear_refs); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        fn = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    return fn  # type: ignore[no-any-return]


_malloc_trim = _load_trim()


def release_free_memory() -> None:
    """Give freed heap pages back to the OS (glibc keeps them otherwise, and RSS would not drop)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def memory_report() -> tuple[str, int, int]:
    release_free_memory()
    return ("mem", resident_bytes(), peak_bytes())


# --------------------------------------------------------------------------- worker loop


def worker_main(conn: Any, stop_event: Any, initializer: Callable[[], None] | None = None) -> None:
    """Entry point of a worker process (the ``target`` of ``multiprocessing.Process``)."""
    # The parent owns shutdown: Ctrl-C in a terminal must not kill workers mid-proof,
    # while SIGTERM (sent by the pool on timeout) must still end the process at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    if initializer is not None:
        initializer()
    conn.send(memory_report())
    conn.send(("ready", os.getpid()))

    functions: dict[str, JobFunction] = {}
    should_stop = stop_event.is_set

    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return  # parent went away
        if msg[0] == "stop":
            return
        _, job_id, fn_name, payload = msg
        reset_peak()
        outcome, recycle = _run_one(job_id, fn_name, payload, functions, should_stop)
        del payload
        try:
            conn.send(memory_report())
            conn.send(("done", job_id, recycle, *outcome))
        except (BrokenPipeError, OSError):
            return
        except Exception:  # the reply did not pickle (details with odd objects)
            logger.error("job %s: reply could not be encoded", job_id)
            conn.send(("done", job_id, recycle, "error", *encode_error(InternalError(GENERIC_INTERNAL_MESSAGE))))
        if recycle:
            # After a MemoryError the heap may be in a poor state: leave, the pool replaces us.
            os._exit(EXIT_AFTER_MEMORY_ERROR)


def _run_one(
    job_id: str,
    fn_name: str,
    payload: bytes,
    functions: dict[str, JobFunction],
    should_stop: Callable[[], bool],
) -> tuple[tuple[Any, ...], bool]:
    """Run one job; return (outcome part of the reply, whether the worker must recycle itself)."""
    try:
        fn = functions.get(fn_name)
        if fn is None:
            fn = functions[fn_name] = resolve_function(fn_name)
        result = fn(payload, should_stop)
        if should_stop():
            return ("cancelled",), False
        if isinstance(result, bytearray | memoryview):
            result = bytes(result)
        if not isinstance(result, bytes):
            logger.error("job %s: %s returned %s, not bytes", job_id, fn_name, type(result).__name__)
            return ("error", *encode_error(InternalError(GENERIC_INTERNAL_MESSAGE))), False
        return ("ok", result), False
    except Cancelled:
        return ("cancelled",), False
    except TeeProverError as exc:
        return ("error", *encode_error(exc)), False
    except MemoryError:
        logger.error("job %s: MemoryError in %s; recycling worker %d", job_id, fn_name, os.getpid())
        return ("error", *encode_error(InternalError(OUT_OF_MEMORY_MESSAGE))), True
    except BaseException as exc:  # SystemExit, KeyboardInterrupt too: a job must not end the worker loop
        frames = "".join(traceback.format_tb(exc.__traceback__))
        # The exception's message is left out on purpose: it may quote private witness data.
        logger.error("job %s: %s raised in %s\n%s", job_id, type(exc).__qualname__, fn_name, frames)
        return ("error", *encode_error(InternalError(GENERIC_INTERNAL_MESSAGE))), False
