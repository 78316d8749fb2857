"""Parameters through the real stack from a real loopback mirror: REST and gRPC fetch, snarkjs accepts the files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from teeprover.params.manifest import save_manifest
from teeprover.v1 import params_pb2, params_pb2_grpc
from tests.support import npm
from tests.support.params_mirror import Mirror, dead_url, manifest_for
from tests.support.stack import SHARED_CACHE, Stack, running_stack

pytestmark = pytest.mark.e2e


def _dev_ptau(k: int) -> bytes:
    # The session stack made these with `teeprover params generate K --dev` (a real contribution record).
    path = SHARED_CACHE / "params" / f"powersOfTau_bls12381_k{k:02d}.INSECURE-DEV.ptau"
    assert path.exists(), "the shared test stack generates k=10 and k=11 development parameters"
    return path.read_bytes()


@pytest.fixture(scope="module")
def mirrored(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Mirror, Path]]:
    tmp = tmp_path_factory.mktemp("params")
    files = {10: _dev_ptau(10), 11: _dev_ptau(11), 12: b"not on any mirror" * 10}
    with Mirror() as mirror:
        manifest = manifest_for(files, [dead_url(), mirror.base("m")])
        for k in (10, 11):
            mirror.files[manifest.entry(k).file_name] = files[k]
        save_manifest(manifest, tmp / "manifest.json")
        with running_stack(tmp, TEEPROVER_PARAMS_MANIFEST=str(tmp / "manifest.json"),
                           TEEPROVER_CACHE_DIR=str(tmp / "cache")) as s:
            yield s, mirror, tmp / "cache" / "params"


def _snarkjs_verifies(path: Path) -> None:
    out = npm.snarkjs("powersoftau", "verify", str(path), timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-1500:]


def test_rest_fetch_uses_the_next_mirror_and_the_file_verifies_with_snarkjs(
        mirrored: tuple[Stack, Mirror, Path]) -> None:
    stack, mirror, cache = mirrored
    reply = httpx.get(f"{stack.url}/fetch-params/10", timeout=120)
    assert reply.status_code == 200 and reply.text == "success"
    assert [r.path for r in mirror.requests("m")] == ["/m/p10.ptau"]  # the dead first mirror was skipped
    _snarkjs_verifies(cache / "p10.ptau")


def test_grpc_get_fetches_on_first_use_and_streams_the_verified_file(
        mirrored: tuple[Stack, Mirror, Path], tmp_path: Path) -> None:
    stack, _mirror, _cache = mirrored
    with grpc.insecure_channel(f"127.0.0.1:{stack.ports['params_port']}") as ch:
        chunks = list(params_pb2_grpc.ParamsStub(ch).Get(params_pb2.GetRequest(k=11), timeout=120))
    data = b"".join(c.data for c in chunks)
    assert hashlib.sha256(data).hexdigest() == chunks[0].sha256 == hashlib.sha256(_dev_ptau(11)).hexdigest()
    (tmp_path / "k11.ptau").write_bytes(data)
    _snarkjs_verifies(tmp_path / "k11.ptau")


def test_all_mirrors_failing_is_503_json_naming_them_and_caches_nothing(
        mirrored: tuple[Stack, Mirror, Path]) -> None:
    stack, _mirror, cache = mirrored
    reply = httpx.get(f"{stack.url}/fetch-params/12", timeout=120)
    assert reply.status_code == 503, reply.text
    body = reply.json()
    assert body["error"] == "ServiceUnavailable" and len(body["details"]["mirrors"]) == 2
    assert not list(cache.glob("*12*"))


def test_fetch_params_can_be_switched_off(tmp_path: Path) -> None:
    with running_stack(tmp_path, TEEPROVER_FETCH_PARAMS="false") as s:
        reply = httpx.get(f"{s.url}/fetch-params/10", timeout=30)
    assert reply.status_code == 404 and reply.json()["error"] == "NotFound"


