"""The prover worker pool with real worker processes (services/prover/pool.py)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.prover import _worker
from services.prover.pool import JobEvent, JobState, WorkerPool, format_seconds
from teeprover.errors import (
    Cancelled,
    CircuitError,
    InternalError,
    InvalidInput,
    JobTimeout,
    Overloaded,
    Unavailable,
)
from tests.unit import _pool_jobs

WAIT = 15.0  # upper bound for any single wait in these tests


def fn(name: str) -> Any:
    """The job (or initializer) function ``name`` of tests/unit/_pool_jobs.py."""
    return getattr(_pool_jobs, name)


def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def make_pool() -> Iterator[Callable[..., WorkerPool]]:
    pools: list[WorkerPool] = []

    def make(size: int = 1, capacity: int = 0, **kwargs: object) -> WorkerPool:
        pool = WorkerPool(size, capacity, **kwargs)  # type: ignore[arg-type]
        pools.append(pool)
        assert pool.wait_ready(WAIT)
        return pool

    yield make
    for pool in pools:
        pool.close()


# ---------------------------------------------------------------------------- results


def test_sixteen_concurrent_jobs_on_two_workers_all_get_their_own_result(make_pool):
    pool = make_pool(size=2)
    jobs = [pool.submit(f"j{i}", fn("echo"), f"payload-{i}".encode(), timeout=30) for i in range(16)]
    assert [j.result(timeout=WAIT) for j in jobs] == [f"payload-{i}".encode() for i in range(16)]
    assert all(j.state is JobState.COMPLETED for j in jobs)
    assert {j.worker_pid for j in jobs} <= set(pool.workers())
    for j in jobs:
        assert j.queued_at <= j.started_at <= j.finished_at
        assert j.queue_wait is not None and j.queue_wait >= 0
        assert j.run_time is not None and j.run_time >= 0
    assert pool.stats() == {"queue_size": 0, "active_workers": 0, "total_workers": 2, "capacity": 0}


def test_worker_keeps_module_state_between_jobs(make_pool):
    pool = make_pool(size=1)
    replies = [pool.submit(f"c{i}", fn("count_calls"), b"", timeout=30).result(WAIT) for i in range(3)]
    pids = {r.split(b":")[0] for r in replies}
    assert len(pids) == 1
    assert [r.split(b":")[1] for r in replies] == [b"1", b"2", b"3"]


def test_initializer_runs_once_in_each_worker(make_pool):
    pool = make_pool(size=1, initializer=fn("good_initializer"))
    assert pool.submit("i", fn("read_initialized"), b"", timeout=30).result(WAIT) == b"yes"


def test_spawn_start_method_serves_jobs(make_pool):
    pool = make_pool(size=1, start_method="spawn")
    assert pool.submit("s", fn("echo"), b"spawned", timeout=30).result(WAIT) == b"spawned"


def test_result_wait_timeout_is_not_the_job_timeout(make_pool):
    pool = make_pool(size=1)
    job = pool.submit("w", fn("staged_sleep"), b"5", timeout=30)
    with pytest.raises(TimeoutError):
        job.result(timeout=0.05)
    assert job.state in (JobState.PENDING, JobState.IN_PROGRESS)
    job.cancel()


# ---------------------------------------------------------------------------- queue bound


def test_full_queue_refuses_extra_jobs_with_overloaded(make_pool):
    pool = make_pool(size=1, capacity=2)
    running = pool.submit("run", fn("staged_sleep"), b"10", timeout=30)
    wait_until(lambda: running.state is JobState.IN_PROGRESS)
    queued = [pool.submit(f"q{i}", fn("echo"), b"x", timeout=30) for i in range(2)]
    with pytest.raises(Overloaded) as info:
        pool.submit("extra", fn("echo"), b"x", timeout=30)
    assert info.value.retry_after >= 1
    assert info.value.details == {"queue_size": 2, "capacity": 2}
    assert pool.stats() == {"queue_size": 2, "active_workers": 1, "total_workers": 1, "capacity": 2}
    running.cancel()
    assert [q.result(WAIT) for q in queued] == [b"x", b"x"]
    assert pool.submit("after", fn("echo"), b"y", timeout=30).result(WAIT) == b"y"


def test_unbounded_queue_accepts_many_jobs(make_pool):
    pool = make_pool(size=1, capacity=0)
    jobs = [pool.submit(f"u{i}", fn("echo"), b"%d" % i, timeout=30) for i in range(50)]
    assert [j.result(WAIT) for j in jobs] == [b"%d" % i for i in range(50)]


# ---------------------------------------------------------------------------- timeout and crashes


def test_job_timeout_kills_the_worker_and_the_next_job_runs_on_a_new_one(make_pool):
    pool = make_pool(size=1, term_grace=0.5)
    job = pool.submit("slow", fn("stubborn_sleep"), b"60", timeout=1)
    wait_until(lambda: job.state is JobState.IN_PROGRESS)
    old_pid = job.worker_pid
    with pytest.raises(JobTimeout) as info:
        job.result(timeout=WAIT)
    assert str(info.value) == "Proof generation exceeded timeout (1s)"
    assert job.state is JobState.TIMED_OUT
    assert 0.9 <= job.run_time < 3.0
    wait_until(lambda: not pid_alive(old_pid), timeout=5)
    nxt = pool.submit("next", fn("pid"), b"", timeout=30)
    new_pid = int(nxt.result(WAIT))
    assert new_pid != old_pid and new_pid in pool.workers()
    assert pool.stats()["total_workers"] == 1


def test_timeout_message_formats_whole_seconds_without_decimals():
    assert format_seconds(600.0) == "600"
    assert format_seconds(2) == "2"
    assert format_seconds(1.5) == "1.5"


def test_worker_killed_from_outside_fails_only_its_job(make_pool):
    pool = make_pool(size=2)
    victim = pool.submit("victim", fn("staged_sleep"), b"10", timeout=30)
    wait_until(lambda: victim.state is JobState.IN_PROGRESS)
    bystander = pool.submit("bystander", fn("staged_sleep"), b"0.5", timeout=30)
    wait_until(lambda: bystander.state is JobState.IN_PROGRESS)
    os.kill(victim.worker_pid, signal.SIGKILL)
    with pytest.raises(InternalError) as info:
        victim.result(WAIT)
    assert str(info.value) == "worker process died (signal SIGKILL)"
    assert victim.state is JobState.FAILED
    assert bystander.result(WAIT) == b"slept"
    wait_until(lambda: pool.stats()["total_workers"] == 2)
    assert pool.submit("next", fn("echo"), b"ok", timeout=30).result(WAIT) == b"ok"


@pytest.mark.parametrize(
    ("job_fn", "expected"),
    [("sigkill_self", "worker process died (signal SIGKILL)"), ("hard_exit", "worker process died (exit code 7)")],
)
def test_worker_that_dies_in_a_job_is_replaced(make_pool, job_fn, expected):
    pool = make_pool(size=1)
    job = pool.submit("die", fn(job_fn), b"", timeout=30)
    with pytest.raises(InternalError, match=r"^worker process died") as info:
        job.result(WAIT)
    assert str(info.value) == expected
    assert pool.submit("next", fn("echo"), b"alive", timeout=30).result(WAIT) == b"alive"
    wait_until(lambda: pool.stats()["total_workers"] == 1)
    assert job.worker_pid not in pool.workers()


def test_memory_error_fails_the_job_and_recycles_the_worker(make_pool):
    pool = make_pool(size=1)
    job = pool.submit("oom", fn("raise_memory_error"), b"", timeout=30)
    with pytest.raises(InternalError, match="out of memory"):
        job.result(WAIT)
    nxt = pool.submit("next", fn("pid"), b"", timeout=30)
    assert int(nxt.result(WAIT)) != job.worker_pid


def test_worker_that_cannot_start_makes_the_pool_unavailable(make_pool):
    pool = WorkerPool(1, initializer=fn("failing_initializer"))
    try:
        assert not pool.wait_ready(0.5)
        assert not pool.is_ready()

        def refused() -> bool:
            try:
                pool.submit("x", fn("echo"), b"", timeout=30).cancel()
            except Unavailable:
                return True
            return False

        wait_until(refused, timeout=10)
    finally:
        pool.close()


# ---------------------------------------------------------------------------- errors


def test_domain_errors_come_back_as_the_same_class_with_message_and_details(make_pool):
    pool = make_pool(size=1)
    with pytest.raises(InvalidInput) as invalid:
        pool.submit("a", fn("raise_invalid"), b"", timeout=30).result(WAIT)
    assert type(invalid.value) is InvalidInput
    assert invalid.value.message == "witness does not satisfy the circuit"
    assert invalid.value.details == {"input": 3}

    with pytest.raises(CircuitError) as circuit:
        pool.submit("b", fn("raise_circuit_error"), b"", timeout=30).result(WAIT)
    assert (circuit.value.instruction, circuit.value.constraint) == (12, 40)
    assert circuit.value.details == {"instruction": 12, "constraint": 40}

    with pytest.raises(Overloaded) as overloaded:
        pool.submit("c", fn("raise_overloaded"), b"", timeout=30).result(WAIT)
    assert overloaded.value.retry_after == 7


def test_other_exceptions_become_a_generic_internal_error_and_the_worker_survives(make_pool):
    pool = make_pool(size=1)
    before = pool.workers()
    job = pool.submit("boom", fn("raise_value_error"), b"TOPSECRET", timeout=30)
    with pytest.raises(InternalError) as info:
        job.result(WAIT)
    assert type(info.value) is InternalError
    assert "TOPSECRET" not in str(info.value)
    with pytest.raises(InternalError):
        pool.submit("str", fn("return_str"), b"", timeout=30).result(WAIT)
    assert pool.workers() == before


def test_worker_logs_the_traceback_of_an_unexpected_error_but_not_its_message(caplog):
    # In-process: a worker's stderr belongs to the fork server, out of pytest's reach.
    name = _worker.job_name(fn("raise_value_error"))
    outcome, recycle = _worker._run_one("j1", name, b"TOPSECRET", {}, lambda: False)
    assert outcome == ("error", "teeprover.errors:InternalError", "internal error in proof worker", {}, {})
    assert recycle is False
    assert "ValueError" in caplog.text and "raise_value_error" in caplog.text
    assert "TOPSECRET" not in caplog.text


# ---------------------------------------------------------------------------- cancellation


def test_cancel_removes_a_queued_job(make_pool):
    pool = make_pool(size=1)
    running = pool.submit("run", fn("staged_sleep"), b"10", timeout=30)
    wait_until(lambda: running.state is JobState.IN_PROGRESS)
    queued = pool.submit("queued", fn("echo"), b"x", timeout=30)
    assert queued.cancel() is True
    assert queued.state is JobState.CANCELLED
    assert queued.started_at is None and queued.worker_pid is None
    with pytest.raises(Cancelled):
        queued.result(timeout=0)
    assert pool.stats()["queue_size"] == 0
    running.cancel()
    with pytest.raises(Cancelled):
        running.result(WAIT)
    assert queued.cancel() is False


def test_cancel_of_a_running_job_stops_it_at_a_stage_boundary_and_keeps_the_worker(make_pool):
    pool = make_pool(size=1)
    job = pool.submit("run", fn("staged_sleep"), b"30", timeout=60)
    wait_until(lambda: job.state is JobState.IN_PROGRESS)
    pid = job.worker_pid
    started = time.monotonic()
    assert job.cancel() is True
    with pytest.raises(Cancelled):
        job.result(WAIT)
    assert time.monotonic() - started < 2
    assert job.state is JobState.CANCELLED
    assert pool.workers() == [pid]
    nxt = pool.submit("next", fn("staged_sleep"), b"0.1", timeout=30)
    assert nxt.result(WAIT) == b"slept"  # the stop flag was reset for the next job
    assert nxt.worker_pid == pid


def test_a_job_that_ignores_cancellation_loses_its_worker_after_the_grace(make_pool):
    pool = make_pool(size=1, cancel_grace=0.3, term_grace=0.2)
    job = pool.submit("stubborn", fn("stubborn_sleep"), b"60", timeout=60)
    wait_until(lambda: job.state is JobState.IN_PROGRESS)
    job.cancel()
    with pytest.raises(Cancelled):
        job.result(timeout=5)
    wait_until(lambda: not pid_alive(job.worker_pid), timeout=5)
    assert pool.submit("next", fn("echo"), b"ok", timeout=30).result(WAIT) == b"ok"


# ---------------------------------------------------------------------------- shutdown, readiness, metrics


def test_drain_lets_running_work_finish_and_refuses_new_jobs(make_pool):
    pool = make_pool(size=1)
    running = pool.submit("run", fn("staged_sleep"), b"0.5", timeout=30)
    queued = pool.submit("queued", fn("echo"), b"q", timeout=30)
    wait_until(lambda: running.state is JobState.IN_PROGRESS)
    assert pool.is_ready()
    assert pool.drain(grace=WAIT) is True
    assert running.result(0) == b"slept" and queued.result(0) == b"q"
    assert not pool.is_ready()
    with pytest.raises(Unavailable, match="draining"):
        pool.submit("late", fn("echo"), b"", timeout=30)


def test_drain_fails_what_is_left_after_the_grace(make_pool):
    pool = make_pool(size=1, term_grace=0.2)
    running = pool.submit("run", fn("stubborn_sleep"), b"60", timeout=60)
    wait_until(lambda: running.state is JobState.IN_PROGRESS)
    queued = pool.submit("queued", fn("echo"), b"q", timeout=30)
    started = time.monotonic()
    assert pool.drain(grace=0.3) is False
    assert time.monotonic() - started < 2
    for job in (running, queued):
        with pytest.raises(Unavailable):
            job.result(0)
        assert job.state is JobState.FAILED
    wait_until(lambda: not pid_alive(running.worker_pid), timeout=5)


def test_drain_from_another_thread_while_jobs_wait(make_pool):
    pool = make_pool(size=1)
    job = pool.submit("run", fn("staged_sleep"), b"0.3", timeout=30)
    drained: list[bool] = []
    t = threading.Thread(target=lambda: drained.append(pool.drain(grace=WAIT)))
    t.start()
    t.join(WAIT)
    assert drained == [True] and job.state is JobState.COMPLETED


def test_closed_pool_is_not_ready_and_refuses_jobs():
    pool = WorkerPool(1)
    try:
        assert pool.wait_ready(WAIT)
        assert pool.is_ready()
        pids = pool.workers()
    finally:
        pool.close()
    pool.close()  # idempotent
    assert not pool.is_ready()
    assert not any(pid_alive(p) for p in pids)
    with pytest.raises(Unavailable):
        pool.submit("x", fn("echo"), b"", timeout=1)


def test_observer_sees_every_transition_with_timings(make_pool):
    events: list[JobEvent] = []
    pool = make_pool(size=1, observer=events.append)
    job = pool.submit("obs", fn("staged_sleep"), b"0.1", timeout=30)
    job.result(WAIT)
    wait_until(lambda: len(events) == 3)
    assert [(e.previous, e.state) for e in events] == [
        (None, JobState.PENDING),
        (JobState.PENDING, JobState.IN_PROGRESS),
        (JobState.IN_PROGRESS, JobState.COMPLETED),
    ]
    final = events[-1]
    assert final.job_id == "obs" and final.worker_pid == job.worker_pid and final.error is None
    assert final.queue_wait is not None and final.run_time is not None and final.run_time >= 0.1


def test_done_callback_runs_once_for_a_finished_job(make_pool):
    pool = make_pool(size=1)
    seen: list[str] = []
    job = pool.submit("cb", fn("echo"), b"", timeout=30)
    job.add_done_callback(lambda j: seen.append(j.state.value))
    job.result(WAIT)
    wait_until(lambda: seen == ["completed"])
    job.add_done_callback(lambda j: seen.append("late"))
    assert seen == ["completed", "late"]


@pytest.mark.parametrize("size", [0, 65])
def test_pool_size_outside_1_to_64_is_refused(size):
    with pytest.raises(ValueError):
        WorkerPool(size)


def test_submit_validates_its_arguments(make_pool):
    pool = make_pool(size=1)
    for import_string in ("no_colon", "tests.unit._pool_jobs:echo"):  # jobs are functions, not names
        with pytest.raises(ValueError, match="not a registered pool job"):
            pool.submit("x", import_string, b"", timeout=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        pool.submit("x", fn("echo"), b"", timeout=0)
    with pytest.raises(TypeError):
        pool.submit("x", fn("echo"), "text", timeout=1)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- memory budget

MIB = 1 << 20


def _vm_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class _Sampler:
    """Sums the workers' VmRSS every few milliseconds (the pool's real footprint) and counts busy workers."""

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.peak_rss = 0
        self.peak_busy = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, sum(_vm_rss(p) for p in self.pool.workers()))
            self.peak_busy = max(self.peak_busy, self.pool.stats()["active_workers"])
            time.sleep(0.003)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


JOB_MIB, HOLD = 48, "0.06"


def _baseline(pool: WorkerPool) -> int:
    wait_until(lambda: pool.memory()["resident"] > 0)
    return sum(_vm_rss(p) for p in pool.workers())


def _stress(pool: WorkerPool, jobs: int = 100) -> list[bytes]:
    """``jobs`` requests at once (the spec's stress shape), each holding JOB_MIB for a moment."""
    submitted: list = []
    lock = threading.Lock()

    def client(i: int) -> None:
        job = pool.submit(f"s{i}", fn("hold_memory"), f"{JOB_MIB} {HOLD}".encode(), timeout=60)
        with lock:
            submitted.append(job)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [j.result(timeout=120) for j in submitted]


def test_memory_budget_queues_jobs_instead_of_overcommitting(make_pool):
    pool = make_pool(4)
    pids = set(pool.workers())
    budget = _baseline(pool) + int(2.5 * JOB_MIB * MIB) + 16 * MIB  # room for two jobs, not four
    pool.memory_budget = budget
    with _Sampler(pool) as s:
        results = _stress(pool)
    assert results == [str(JOB_MIB * MIB).encode()] * 100  # every request answered
    assert set(pool.workers()) == pids  # nobody was killed
    assert s.peak_rss <= budget
    assert pool.memory()["peak_reserved"] <= budget
    assert s.peak_busy == 2  # queued, not serialised: two at a time fit
    assert pool.expected_growth(fn("hold_memory")) >= 0.9 * JOB_MIB * MIB  # learned from the workers


def test_without_a_budget_the_same_stress_goes_over_it(make_pool):
    pool = make_pool(4)
    budget = _baseline(pool) + int(2.5 * JOB_MIB * MIB) + 16 * MIB
    with _Sampler(pool) as s:
        results = _stress(pool, jobs=40)
    assert len(results) == 40
    assert s.peak_busy > 2 and s.peak_rss > budget


def test_job_of_unknown_size_runs_alone_then_its_growth_is_known(make_pool):
    pool = make_pool(2, memory_budget=1 << 40)
    assert pool.expected_growth(fn("hold_memory")) is None
    with _Sampler(pool) as s:
        first = pool.submit("a", fn("hold_memory"), f"{JOB_MIB} 0.3".encode(), timeout=30)
        second = pool.submit("b", fn("hold_memory"), f"{JOB_MIB} 0.3".encode(), timeout=30)
        wait_until(lambda: first.state is JobState.IN_PROGRESS)
        time.sleep(0.1)
        assert second.state is JobState.PENDING  # waits: the first one's size is unknown
        first.result(WAIT), second.result(WAIT)
    assert s.peak_busy == 1
    assert pool.expected_growth(fn("hold_memory")) >= 0.9 * JOB_MIB * MIB  # learned from the workers
    with _Sampler(pool) as s:  # now known and small against the budget: both run at once
        jobs = [pool.submit(f"c{i}", fn("hold_memory"), f"{JOB_MIB} 0.3".encode(), timeout=30) for i in range(2)]
        for j in jobs:
            j.result(WAIT)
    assert s.peak_busy == 2


def test_declared_memory_beyond_the_budget_left_waits(make_pool):
    pool = make_pool(2)
    pool.memory_budget = _baseline(pool) + 100 * MIB
    jobs = [pool.submit(f"m{i}", fn("staged_sleep"), b"0.2", timeout=30, memory=80 * MIB) for i in range(3)]
    with _Sampler(pool) as s:
        for j in jobs:
            assert j.result(WAIT) == b"slept"
    assert s.peak_busy == 1
    with pytest.raises(ValueError):
        pool.submit("bad", fn("echo"), b"", timeout=1, memory=-1)


def test_default_budget_is_a_share_of_this_machine_s_memory():
    from services.prover.pool import _mem_total, default_memory_budget, key_cache_bytes

    budget = default_memory_budget()
    assert 0 < budget <= _mem_total()
    assert key_cache_bytes(8 << 30, 4) == 1 << 30
    with pytest.raises(ValueError):
        WorkerPool(1, memory_budget=0)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_memory_budget_under_the_spec_stress_with_real_proofs(make_pool, tmp_path):
    """The spec's stress (100 concurrent requests) proving k=16 snarkjs files on four workers, with the
    budget below what four proofs at once take: no worker is killed, every proof verifies, the
    workers' summed RSS stays under the budget.  ``POOL_STRESS_K`` / ``_REQUESTS`` shrink it."""
    from teeprover.groth16 import encoding, setup, verify
    from teeprover.snarkjs.ptau import lagrange_params_from_secrets
    from teeprover.snarkjs.r1cs import r1cs_to_bytes
    from teeprover.snarkjs.wtns import wtns_to_bytes
    from teeprover.snarkjs.zkey import write_zkey
    from tests.support.circuits import squaring_chain

    k = int(os.environ.get("POOL_STRESS_K", "16"))
    requests = int(os.environ.get("POOL_STRESS_REQUESTS", "100"))
    r1cs, z = squaring_chain((1 << k) - 4)
    params = lagrange_params_from_secrets(1 << k, tau=0x5EED, alpha=0xA1FA, beta=0xBE7A)
    pk = setup.setup(r1cs, params, setup.ToxicWaste(delta=0xDE17A))
    (tmp_path / "main.r1cs").write_bytes(r1cs_to_bytes(r1cs))
    (tmp_path / "main.wtns").write_bytes(wtns_to_bytes(z))
    write_zkey(tmp_path / "main.zkey", pk)

    pool = make_pool(4)
    pids = set(pool.workers())
    # One proof on each worker first (four at once, no budget yet): each has then imported the prover,
    # which it keeps, so the idle figures below are the steady ones.
    warm = [pool.submit(f"warm{i}", fn("prove_files"), str(tmp_path).encode(), timeout=1800) for i in range(4)]
    assert all(verify.verify(pk.vk, z[1:3], encoding.decode_proof(w.result(1800))) for w in warm)
    assert len({w.worker_pid for w in warm}) == 4
    growth = pool.expected_growth(fn("prove_files"))
    assert growth is not None and growth > 0
    budget = sum(_vm_rss(p) for p in pool.workers()) + int(2.5 * growth)  # two proofs at first estimate, not four
    pool.memory_budget = budget
    jobs = [pool.submit(f"p{i}", fn("prove_files"), str(tmp_path).encode(), timeout=3600) for i in range(requests)]
    with _Sampler(pool) as s:
        proofs = [j.result(3600) for j in jobs]
    assert all(verify.verify(pk.vk, z[1:3], encoding.decode_proof(p)) for p in proofs)
    assert set(pool.workers()) == pids
    assert s.peak_rss <= budget
    assert pool.memory()["peak_reserved"] <= budget
    # The first growths seen include the prover's imports: once later proofs show less, more than two may
    # fit. The law is the RSS bound above; and proofs did run side by side, not one at a time.
    assert s.peak_busy >= 2


# ---------------------------------------------------------------------------- explicit jobs


def test_only_registered_job_functions_are_accepted(make_pool):
    pool = make_pool(size=1)
    for not_a_job in (fn("unregistered"), fn("good_initializer"), print):
        with pytest.raises(ValueError, match="not a registered pool job"):
            pool.submit("x", not_a_job, b"", timeout=30)
    assert pool.submit("ok", fn("echo"), b"registered", timeout=30).result(WAIT) == b"registered"


def test_a_worker_runs_only_names_its_modules_registered():
    # What the pipe could carry besides a registered job: an unregistered function, a non-function.
    for name in (_worker.job_name(fn("unregistered")), "os:system", "tests.unit._pool_jobs"):
        outcome, recycle = _worker._run_one("j", name, b"", {}, lambda: False)
        assert outcome[:3] == ("error", "teeprover.errors:InternalError", "internal error in proof worker")
        assert recycle is False
