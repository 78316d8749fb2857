"""Single-flight: one execution per concurrent burst, shared result or shared error."""

from __future__ import annotations

import threading

import pytest

from teeprover.params._singleflight import SingleFlight


def _burst(flight: SingleFlight[int], fn, n: int = 16) -> tuple[list[object], list[bool]]:
    results: list[object] = [None] * n
    shared: list[bool] = [False] * n
    threads = []
    for i in range(n):
        def run(i: int = i) -> None:
            try:
                results[i], shared[i] = flight.do("key", fn)
            except Exception as exc:  # collected and asserted by the caller
                results[i] = exc
        threads.append(threading.Thread(target=run))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    return results, shared


def test_concurrent_callers_share_one_execution() -> None:
    flight: SingleFlight[int] = SingleFlight()
    calls = []
    release = threading.Event()

    def fn() -> int:
        calls.append(1)
        release.wait(5)
        return 42

    timer = threading.Timer(0.3, release.set)
    timer.start()
    results, shared = _burst(flight, fn)
    timer.join()
    assert results == [42] * 16
    assert len(calls) == 1
    assert shared.count(False) == 1
    assert not flight.in_flight("key")


def test_error_reaches_every_waiter_and_next_call_runs_again() -> None:
    flight: SingleFlight[int] = SingleFlight()
    release = threading.Event()

    def boom() -> int:
        release.wait(5)
        raise ValueError("mirror down")

    timer = threading.Timer(0.3, release.set)
    timer.start()
    results, _ = _burst(flight, boom)
    timer.join()
    assert all(isinstance(r, ValueError) for r in results)
    assert flight.do("key", lambda: 7) == (7, False)
    with pytest.raises(KeyError):
        flight.do("key", lambda: dict[str, int]()["x"])
