"""Fetching parameter files from mirrors: real HTTP on loopback and file:// URLs.

Each success is paired with its failure: a good mirror vs. a dead one, an
intact file vs. a truncated / flipped / oversized one, a clean download vs.
one killed with SIGKILL halfway and resumed.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teeprover.errors import Unavailable
from teeprover.params.fetch import partial_path
from teeprover.params.manifest import save_manifest
from teeprover.params.store import ParamStore
from tests.support.params_mirror import Behaviour, Mirror, dead_url, leftovers, manifest_for, random_file

REPO = Path(__file__).resolve().parents[2]
K = 12


@pytest.fixture
def mirror():
    with Mirror() as m:
        yield m


@pytest.fixture
def data() -> bytes:
    return random_file(seed=K)


def _gets(mirror: Mirror, prefix: str | None = None) -> int:
    return len(mirror.requests(prefix))


def test_fetch_over_http_stores_verified_file(tmp_path, mirror, data) -> None:
    mirror.files[f"p{K}.ptau"] = data
    store = ParamStore(tmp_path, manifest_for({K: data}, [mirror.base("a")]))
    events: list[tuple[str, int, int]] = []
    path = store.ensure(K, progress=lambda *e: events.append(e))
    assert path == tmp_path / f"p{K}.ptau"
    assert path.read_bytes() == data
    assert leftovers(tmp_path) == [f"p{K}.ptau"]
    assert events[-1] == ("done", len(data), len(data))
    downloads = [e for e in events if e[0] == "download"]
    assert downloads and downloads[-1][1] == len(data)
    assert [d[1] for d in downloads] == sorted(d[1] for d in downloads)
    [cached] = store.list()
    assert (cached.k, cached.size, cached.sha256) == (K, len(data), hashlib.sha256(data).hexdigest())
    assert cached.verified
    store.ensure(K)
    assert _gets(mirror) == 1  # verified once, then served from the cache


def test_fetch_over_file_url(tmp_path, data) -> None:
    src = tmp_path / "mirror"
    src.mkdir()
    (src / f"p{K}.ptau").write_bytes(data)
    cache = tmp_path / "cache"
    store = ParamStore(cache, manifest_for({K: data}, [src.as_uri()]))
    assert store.ensure(K).read_bytes() == data
    assert leftovers(cache) == [f"p{K}.ptau"]


@pytest.mark.parametrize("first", ["refused", "http-500", "http-404", "missing-file-url"])
def test_failed_first_mirror_falls_over_to_next(tmp_path, mirror, data, first) -> None:
    mirror.files[f"p{K}.ptau"] = data
    bad = {
        "refused": dead_url(),
        "http-500": mirror.base("bad", Behaviour(status=500)),
        "http-404": mirror.base("bad", Behaviour(status=404)),
        "missing-file-url": (tmp_path / "nowhere").as_uri(),
    }[first]
    store = ParamStore(tmp_path / "cache", manifest_for({K: data}, [bad, mirror.base("good")]))
    assert store.ensure(K).read_bytes() == data
    assert _gets(mirror, "good") == 1


def test_all_mirrors_down_is_unavailable_and_caches_nothing(tmp_path, mirror, data) -> None:
    mirrors = [dead_url(), mirror.base("bad", Behaviour(status=503)), (tmp_path / "nowhere").as_uri()]
    cache = tmp_path / "cache"
    store = ParamStore(cache, manifest_for({K: data}, mirrors))
    with pytest.raises(Unavailable) as err:
        store.ensure(K)
    tried = err.value.details["mirrors"]
    assert [t["mirror"] for t in tried] == mirrors
    assert all(t["error"] for t in tried)
    assert "HTTP 503" in tried[1]["error"]
    for url in mirrors:
        assert url.rstrip("/") in err.value.message
    assert leftovers(cache) == []
    assert store.list() == []


def test_manifest_without_mirrors_is_unavailable(tmp_path, data) -> None:
    store = ParamStore(tmp_path, manifest_for({K: data}, []))
    with pytest.raises(Unavailable, match="no mirrors"):
        store.ensure(K)


@pytest.mark.parametrize("fault", ["truncated", "flipped-byte", "too-long", "much-too-long"])
@pytest.mark.parametrize("scheme", ["http", "file"])
def test_corrupt_file_is_rejected_naming_both_hashes(tmp_path, mirror, data, fault, scheme) -> None:
    served = {
        "truncated": data[:-1000],
        "flipped-byte": data[:5000] + bytes([data[5000] ^ 1]) + data[5001:],
        "too-long": data + b"extra",
        "much-too-long": data + bytes(2 << 20),
    }[fault]
    if scheme == "http":
        mirror.files[f"p{K}.ptau"] = served
        base = mirror.base("a")
    else:
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / f"p{K}.ptau").write_bytes(served)
        base = (tmp_path / "src").as_uri()
    cache = tmp_path / "cache"
    store = ParamStore(cache, manifest_for({K: data}, [base]))
    with pytest.raises(Unavailable) as err:
        store.ensure(K)
    expected = hashlib.sha256(data).hexdigest()
    [tried] = err.value.details["mirrors"]
    assert err.value.details["expected_sha256"] == expected
    assert expected in err.value.message
    assert tried["kind"] == "integrity"
    if fault != "much-too-long":  # cut off early on purpose: only the size is known
        actual = hashlib.sha256(served).hexdigest()
        assert actual in err.value.message
        assert tried["actual_sha256"] == actual
    assert leftovers(cache) == []  # no final file, no .partial


def test_cut_connection_resumes_with_range_on_next_mirror(tmp_path, mirror, data) -> None:
    mirror.files[f"p{K}.ptau"] = data
    half = len(data) // 2
    bases = [mirror.base("cut", Behaviour(cut_after=half)), mirror.base("good")]
    store = ParamStore(tmp_path, manifest_for({K: data}, bases))
    assert store.ensure(K).read_bytes() == data
    [resumed] = mirror.requests("good")
    assert resumed.range == f"bytes={half}-"
    assert resumed.bytes_sent == len(data) - half


def test_cut_connection_on_every_mirror_keeps_resumable_prefix_only(tmp_path, mirror, data) -> None:
    mirror.files[f"p{K}.ptau"] = data
    store = ParamStore(tmp_path, manifest_for({K: data}, [mirror.base("cut", Behaviour(cut_after=100_000))]))
    with pytest.raises(Unavailable):
        store.ensure(K)
    assert leftovers(tmp_path) == [f"p{K}.ptau.partial"]  # never under the final name
    mirror.behave("cut", Behaviour())
    assert store.ensure(K).read_bytes() == data
    assert mirror.requests("cut")[-1].range == "bytes=100000-"
    assert leftovers(tmp_path) == [f"p{K}.ptau"]


def test_mirror_ignoring_range_restarts_from_zero(tmp_path, mirror, data) -> None:
    mirror.files[f"p{K}.ptau"] = data
    partial_path(tmp_path / f"p{K}.ptau").write_bytes(data[:1234])
    store = ParamStore(tmp_path, manifest_for({K: data}, [mirror.base("a", Behaviour(ignore_range=True))]))
    assert store.ensure(K).read_bytes() == data
    [req] = mirror.requests()
    assert req.range == "bytes=1234-" and req.bytes_sent == len(data)


def test_corrupt_partial_prefix_is_refetched_from_zero(tmp_path, mirror, data) -> None:
    mirror.files[f"p{K}.ptau"] = data
    partial_path(tmp_path / f"p{K}.ptau").write_bytes(bytes(50_000))  # not a prefix of the file
    store = ParamStore(tmp_path, manifest_for({K: data}, [mirror.base("a")]))
    assert store.ensure(K).read_bytes() == data
    assert [r.range for r in mirror.requests()] == ["bytes=50000-", None]


def test_complete_partial_left_before_rename_is_verified_without_download(tmp_path, mirror, data) -> None:
    partial_path(tmp_path / f"p{K}.ptau").write_bytes(data)
    store = ParamStore(tmp_path, manifest_for({K: data}, [mirror.base("a")]))
    assert store.ensure(K).read_bytes() == data
    assert mirror.requests() == []


_CHILD = """
import sys
from teeprover.params.manifest import load_manifest
from teeprover.params.store import ParamStore
ParamStore(sys.argv[1], load_manifest(sys.argv[2])).ensure(int(sys.argv[3]))
"""


def test_download_killed_with_sigkill_resumes_with_range_and_ends_verified(tmp_path, mirror) -> None:
    data = random_file(seed=99, size=640 * 1024)
    mirror.files[f"p{K}.ptau"] = data
    mirror.behave("m", Behaviour(chunk=16 * 1024, delay=0.01))  # ~1.6 MB/s: ~0.4 s for the file
    manifest = manifest_for({K: data}, [mirror.base("m")])
    save_manifest(manifest, tmp_path / "manifest.json")
    cache = tmp_path / "cache"
    partial = partial_path(cache / f"p{K}.ptau")
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(cache), str(tmp_path / "manifest.json"), str(K)],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size >= len(data) // 3:
                break
            assert child.poll() is None, "the download finished or failed before it could be killed"
            time.sleep(0.005)
        else:
            pytest.fail("the child never got a third of the file")
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    prefix = partial.stat().st_size
    assert 0 < prefix < len(data)
    assert not (cache / f"p{K}.ptau").exists()  # nothing half-written under the final name

    mirror.behave("m", Behaviour())
    store = ParamStore(cache, manifest)
    events: list[tuple[str, int, int]] = []
    assert store.ensure(K, progress=lambda *e: events.append(e)).read_bytes() == data
    resumed = mirror.requests()[-1]
    assert resumed.range == f"bytes={prefix}-"
    assert resumed.bytes_sent == len(data) - prefix
    assert ("verify", prefix, prefix) in events  # the kept prefix was re-hashed first
    assert store.list()[0].verified
    assert leftovers(cache) == [f"p{K}.ptau"]
