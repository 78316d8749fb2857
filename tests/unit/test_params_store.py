"""The parameter cache: single-flight, verify-once, change detection, disk budget, local files, hooks."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.params.metrics import PrometheusObserver
from teeprover.commands._fetch_progress import fetch_with_progress
from teeprover.errors import InvalidInput, NotFound, Unavailable
from teeprover.params.manifest import load_manifest, save_manifest
from teeprover.params.store import ParamStore
from tests.support.params_mirror import Behaviour, Mirror, leftovers, manifest_for, random_file

SIZE = 300 * 1024


class Recorder:
    """A ParamsObserver that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str):  # noqa: ANN204
        def hook(*args: object) -> None:
            with self._lock:
                self.calls.append((name, *args))
        return hook

    def names(self) -> list[str]:
        return [c[0] for c in self.calls if c[0] != "bytes_fetched"]


@pytest.fixture
def mirror():
    with Mirror() as m:
        yield m


@pytest.fixture
def files(mirror) -> dict[int, bytes]:
    out = {k: random_file(seed=k, size=SIZE) for k in (10, 11, 12)}
    for k, data in out.items():
        mirror.files[f"p{k}.ptau"] = data
    return out


def _store(tmp_path: Path, mirror: Mirror, files: dict[int, bytes], **kw) -> ParamStore:
    return ParamStore(tmp_path / "cache", manifest_for(files, [mirror.base("m")]), **kw)


def test_unknown_or_out_of_range_k_is_refused(tmp_path, mirror, files) -> None:
    store = _store(tmp_path, mirror, files)
    with pytest.raises(InvalidInput):
        store.ensure(9)
    with pytest.raises(InvalidInput):
        store.ensure(25)
    with pytest.raises(NotFound):
        store.ensure(20)
    assert mirror.requests() == []


def test_twenty_concurrent_ensures_make_exactly_one_download(tmp_path, mirror, files) -> None:
    mirror.behave("m", Behaviour(chunk=32 * 1024, delay=0.02))  # ~0.2 s, so every thread arrives mid-flight
    obs = Recorder()
    store = _store(tmp_path, mirror, files, observer=obs)
    start = threading.Barrier(20)
    results: list[object] = [None] * 20
    done_events = [0] * 20

    def worker(i: int) -> None:
        def progress(phase: str, done: int, total: int) -> None:
            if phase == "done":
                done_events[i] += 1
        start.wait(timeout=10)
        try:
            results[i] = store.ensure(11, progress=progress)
        except Exception as exc:  # asserted below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [store.path_of(11)] * 20
    assert len(mirror.requests()) == 1
    assert done_events == [1] * 20
    assert obs.names().count("cache_miss") == 1
    assert store.path_of(11).read_bytes() == files[11]


def test_verification_is_remembered_across_restarts(tmp_path, mirror, files) -> None:
    _store(tmp_path, mirror, files).ensure(10)
    events: list[tuple[str, int, int]] = []
    again = _store(tmp_path, mirror, files)
    again.ensure(10, progress=lambda *e: events.append(e))
    assert events == [("done", SIZE, SIZE)]  # no re-hash, no download
    assert len(mirror.requests()) == 1


def test_file_modified_after_verification_is_detected_and_refetched(tmp_path, mirror, files) -> None:
    obs = Recorder()
    store = _store(tmp_path, mirror, files, observer=obs)
    path = store.ensure(10)
    st = path.stat()
    with open(path, "r+b") as f:  # same size, one byte flipped, mtime put back
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not store.list()[0].verified  # ctime still betrays the change
    assert store.ensure(10).read_bytes() == files[10]
    assert len(mirror.requests()) == 2
    assert ("verification_failed", 10, "changed_on_disk") in obs.calls


def test_file_replaced_by_shorter_one_is_refetched(tmp_path, mirror, files) -> None:
    store = _store(tmp_path, mirror, files)
    path = store.ensure(10)
    path.write_bytes(files[10][:100])
    assert store.ensure(10).read_bytes() == files[10]
    assert len(mirror.requests()) == 2


def test_touched_but_identical_file_is_rehashed_not_refetched(tmp_path, mirror, files) -> None:
    store = _store(tmp_path, mirror, files)
    path = store.ensure(10)
    os.utime(path, ns=(1, 1))
    events: list[tuple[str, int, int]] = []
    store.ensure(10, progress=lambda *e: events.append(e))
    assert ("verify", SIZE, SIZE) in events
    assert len(mirror.requests()) == 1
    assert store.list()[0].verified


def test_unverified_file_found_in_cache_is_hashed_before_use(tmp_path, mirror, files) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "p10.ptau").write_bytes(files[10])  # e.g. copied in by an operator
    store = _store(tmp_path, mirror, files)
    assert not store.list()[0].verified
    store.ensure(10)
    assert store.list()[0].verified
    assert mirror.requests() == []


def test_open_verified_streams_the_verified_bytes(tmp_path, mirror, files) -> None:
    store = _store(tmp_path, mirror, files)
    with store.open_verified(12) as vf:
        pieces = list(vf.chunks(100_000))
        assert vf.entry.sha256 == hashlib.sha256(files[12]).hexdigest()
    assert [off for off, _ in pieces] == [0, 100_000, 200_000, 300_000]
    assert b"".join(p for _, p in pieces) == files[12]
    assert vf.file.closed


def test_disk_budget_evicts_least_recently_used(tmp_path, mirror, files) -> None:
    ticks = iter(range(1_000_000))
    obs = Recorder()
    store = _store(tmp_path, mirror, files, disk_budget_bytes=2 * SIZE + SIZE // 2, observer=obs,
                   clock=lambda: float(next(ticks)))
    store.ensure(10)
    store.ensure(11)
    store.ensure(10)  # 10 is now more recent than 11
    store.ensure(12)
    assert sorted(c.k for c in store.list()) == [10, 12]
    assert ("evicted", 11, SIZE) in obs.calls
    assert leftovers(tmp_path / "cache") == ["p10.ptau", "p12.ptau"]


def test_disk_budget_never_evicts_a_file_being_read(tmp_path, mirror, files) -> None:
    store = _store(tmp_path, mirror, files, disk_budget_bytes=SIZE + SIZE // 2)  # smaller than two files
    store.ensure(10)
    store.ensure(11)  # evicts 10
    assert [c.k for c in store.list()] == [11]
    with store.open_verified(11) as vf:
        with pytest.raises(Unavailable) as err:
            store.ensure(12)
        assert err.value.details["in_use"] == [11]
        assert not store.evict(11)
        assert vf.file.read() == files[11]
        assert [c.k for c in store.list()] == [11]
    assert store.ensure(12).read_bytes() == files[12]  # reader gone: 11 may go
    assert [c.k for c in store.list()] == [12]
    assert leftovers(tmp_path / "cache") == ["p12.ptau"]


def test_file_larger_than_the_budget_is_refused_without_evicting(tmp_path, mirror, files) -> None:
    store = _store(tmp_path, mirror, files, disk_budget_bytes=SIZE)
    store.ensure(10)
    big = random_file(seed=5, size=SIZE + 1)
    mirror.files["p13.ptau"] = big
    store = ParamStore(tmp_path / "cache", manifest_for({10: files[10], 13: big}, [mirror.base("m")]),
                       disk_budget_bytes=SIZE)
    with pytest.raises(Unavailable, match="disk budget"):
        store.ensure(13)
    assert [c.k for c in store.list()] == [10]


def test_put_local_registers_insecure_dev_params_and_manifest_can_be_saved(tmp_path, mirror) -> None:
    store = ParamStore(tmp_path / "cache", manifest_for({}, []))
    generated = tmp_path / "dev-k14.ptau"
    generated.write_bytes(random_file(seed=14, size=50_000))
    with pytest.raises(NotFound):
        store.put_local(14, generated)
    entry = store.put_local(14, generated, register_insecure=True)
    assert (entry.k, entry.file_name, entry.size, entry.insecure) == (14, "dev-k14.ptau", 50_000, True)
    assert store.manifest.entry(14) == entry
    assert store.ensure(14).read_bytes() == generated.read_bytes()
    save_manifest(store.manifest, tmp_path / "manifest.json")
    reopened = ParamStore(tmp_path / "cache", load_manifest(tmp_path / "manifest.json"))
    [cached] = reopened.list()
    assert cached.verified and cached.insecure
    # Regenerating replaces an insecure entry (same file name).
    generated.write_bytes(random_file(seed=15, size=40_000))
    again = reopened.put_local(14, generated, register_insecure=True)
    assert again.size == 40_000 and again.file_name == "dev-k14.ptau"
    assert reopened.ensure(14).read_bytes() == generated.read_bytes()


def test_put_local_must_match_a_secure_entry(tmp_path, mirror, files) -> None:
    obs = Recorder()
    store = _store(tmp_path, mirror, files, observer=obs)
    good = tmp_path / "good.ptau"
    good.write_bytes(files[10])
    bad = tmp_path / "bad.ptau"
    bad.write_bytes(files[10][:-1] + b"\x00")
    with pytest.raises(InvalidInput) as err:
        store.put_local(10, bad, register_insecure=True)  # never replaces a secure entry
    assert hashlib.sha256(files[10]).hexdigest() in err.value.message
    assert hashlib.sha256(bad.read_bytes()).hexdigest() in err.value.message
    assert ("verification_failed", 10, "local_file") in obs.calls
    assert leftovers(tmp_path / "cache") == []
    assert store.put_local(10, good) == store.manifest.entry(10)
    assert store.ensure(10).read_bytes() == files[10]
    assert mirror.requests() == []


def test_prometheus_observer_counts_hits_misses_and_bytes(tmp_path, mirror, files) -> None:
    registry = CollectorRegistry()
    store = _store(tmp_path, mirror, files, observer=PrometheusObserver(registry))
    store.ensure(10)
    store.ensure(10)
    val = registry.get_sample_value
    assert val("teeprover_params_cache_misses_total", {"k": "10"}) == 1
    assert val("teeprover_params_cache_hits_total", {"k": "10"}) == 1
    assert val("teeprover_params_fetched_bytes_total", {"k": "10"}) == SIZE
    assert val("teeprover_params_fetch_duration_seconds_count", {"k": "10", "outcome": "ok"}) == 1


def test_fetch_with_progress_draws_a_bar(tmp_path, mirror, files) -> None:
    out = io.StringIO()
    path = fetch_with_progress(_store(tmp_path, mirror, files), 10, file=out)
    assert path.read_bytes() == files[10]
    assert "k=10 download" in out.getvalue()
    assert "100%" in out.getvalue()
