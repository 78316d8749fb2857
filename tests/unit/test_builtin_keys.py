"""Built-in keys: selection, pinned circuits, states and the 503 a wallet gets while a key is set up."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from services.prover import builtin as builtin_mod
from services.prover.builtin import BuiltinKeys
from services.prover.core import ProverCore, VersionInfo
from teeprover import builtin_keys, zkir
from teeprover.errors import InvalidInput, NotFound, Unavailable

OUTPUT = "midnight/zswap/output"


def test_selection_all_none_and_lists_in_setup_order() -> None:
    assert builtin_keys.parse_selection("all") == tuple(builtin_keys.BUILTINS)
    assert builtin_keys.parse_selection("none") == builtin_keys.parse_selection(" ") == ()
    assert builtin_keys.parse_selection("midnight/zswap/spend, midnight/zswap/sign") == (
        "midnight/zswap/sign", "midnight/zswap/spend")


def test_selection_refuses_unknown_names() -> None:
    with pytest.raises(InvalidInput, match="midnight/zswap/mint"):
        builtin_keys.parse_selection("midnight/zswap/mint")


@pytest.mark.parametrize("location", list(builtin_keys.BUILTINS))
def test_packaged_circuits_match_midnights_recorded_sha256_and_parse(location: str) -> None:
    data = builtin_keys.circuit_bytes(location)
    assert hashlib.sha256(data).hexdigest() == builtin_keys.BUILTINS[location].sha256
    assert zkir.load_circuit(data).num_inputs > 0


def _mark_ready(root: Path, location: str, digest: str) -> None:
    (root / location).mkdir(parents=True)
    (root / location / "key.json").write_text(json.dumps({"circuit_sha256": digest}))


def test_ready_only_when_key_json_records_the_packaged_circuit(tmp_path: Path) -> None:
    assert not builtin_keys.is_ready(tmp_path, OUTPUT)
    _mark_ready(tmp_path, OUTPUT, "00" * 32)  # keys of another (older) circuit
    assert not builtin_keys.is_ready(tmp_path, OUTPUT)
    (tmp_path / OUTPUT / "key.json").write_text(json.dumps({"circuit_sha256": builtin_keys.circuit_digest(OUTPUT)}))
    assert builtin_keys.is_ready(tmp_path, OUTPUT)


def test_a_key_not_ready_answers_503_with_retry_after_naming_it(tmp_path: Path) -> None:
    keys = BuiltinKeys(tmp_path, [OUTPUT], dev_params=False)
    assert keys.states() == {OUTPUT: "pending"}
    with pytest.raises(Unavailable) as info:
        keys.require_ready(OUTPUT)
    assert OUTPUT in info.value.message and info.value.retry_after == builtin_mod.RETRY_AFTER_SECONDS
    assert info.value.details["state"] == "pending"
    keys.require_ready("builtin/demo/range")  # not a built-in: nothing to say
    _mark_ready(tmp_path, OUTPUT, builtin_keys.circuit_digest(OUTPUT))
    keys.require_ready(OUTPUT)
    assert keys.states() == {OUTPUT: "ready"}


def test_a_failed_setup_is_reported_with_its_last_error_line(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    keys = BuiltinKeys(tmp_path, [OUTPUT], dev_params=False)
    monkeypatch.setattr(keys, "command", lambda locations: [
        sys.executable, "-c", "import sys; print('working', file=sys.stderr); sys.exit('no parameters of size >= 17')"])
    monkeypatch.setattr(builtin_mod, "RETRY_SECONDS", 3600.0)
    keys.start()
    try:
        for _ in range(200):
            if keys.states()[OUTPUT] == "failed":
                break
            keys._stop.wait(0.05)
        assert keys.states() == {OUTPUT: "failed"}
        with pytest.raises(Unavailable) as info:
            keys.require_ready(OUTPUT)
        assert info.value.details["error"] == "no parameters of size >= 17"
    finally:
        keys.stop()


def test_the_setup_command_runs_the_cli_single_flight(tmp_path: Path) -> None:
    argv = BuiltinKeys(tmp_path, [OUTPUT], dev_params=True).command([OUTPUT])
    assert argv[1:5] == ["-m", "teeprover.cli", "setup", "--builtin"] and argv[5] == OUTPUT
    assert "--dev-params" in argv and str(tmp_path) in argv


class _Job:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def result(self, timeout: float | None = None) -> bytes:
        raise self.error

    def cancel(self) -> bool:
        return False


class _Pool:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def submit(self, job_id: str, fn: Any, payload: bytes, *, timeout: float) -> _Job:
        return _Job(self.error)

    def stats(self) -> dict[str, int]:
        return {"queue_size": 0, "active_workers": 0, "total_workers": 1}

    def is_ready(self) -> bool:
        return True


def _core(tmp_path: Path, error: Exception) -> ProverCore:
    version = VersionInfo("teeprover", "0", "x", "y", "3", False)
    core = ProverCore(_Pool(error), max_body_bytes=1 << 20, job_timeout=5, version=version)  # type: ignore[arg-type]
    core.builtin = BuiltinKeys(tmp_path, [OUTPUT], dev_params=False)
    return core


def _run(core: ProverCore) -> Any:
    return core.run("prove", b"\x80", "application/cbor", "req-1", lambda cancel: None)


def test_core_turns_a_missing_builtin_key_into_503_and_reports_it_in_ready(tmp_path: Path) -> None:
    core = _core(tmp_path, NotFound(f"no keys for key_location {OUTPUT!r}", details={"key_location": OUTPUT}))
    assert core.ready()["builtin_keys"] == {OUTPUT: "pending"}
    with pytest.raises(Unavailable, match=f"built-in key {OUTPUT} is not ready"):
        _run(core)


def test_core_keeps_404_for_other_missing_keys(tmp_path: Path) -> None:
    core = _core(tmp_path, NotFound("no keys for key_location 'a/b'", details={"key_location": "a/b"}))
    with pytest.raises(NotFound):
        _run(core)


def test_ensure_keys_sets_up_once_per_circuit(tmp_path: Path) -> None:
    from teeprover.keysetup import ensure_keys
    from teeprover.keystore import made_for

    demo = (Path(__file__).resolve().parents[1] / "fixtures" / "zkir" / "arithmetic.zkir.json").read_bytes()
    digest = zkir.load_circuit(demo).digest().hex()
    cache = tmp_path / "cache"
    assert not made_for(tmp_path / "keys", digest)
    assert ensure_keys(demo, tmp_path / "keys", cache=cache, dev_params=True)  # dev parameters made, then keys
    assert made_for(tmp_path / "keys", digest) and not made_for(tmp_path / "keys", "00" * 32)
    assert not ensure_keys(demo, tmp_path / "keys", cache=cache)  # already there: nothing done


def test_setup_builtin_reports_keys_already_made_for_the_packaged_circuit_as_ready(tmp_path: Path) -> None:
    # A key directory whose key.json records the packaged circuit's digest counts as ready: nothing is set up
    # (no parameters exist in this cache, so a set-up would fail).  Other names in the list are ignored.
    sign = "midnight/zswap/sign"
    (tmp_path / "keys" / sign).mkdir(parents=True)
    (tmp_path / "keys" / sign / "key.json").write_text(
        json.dumps({"circuit_sha256": builtin_keys.circuit_digest(sign)}))
    states: list[tuple[str, str]] = []
    done = builtin_keys.setup_builtin(tmp_path / "keys", [sign, "user/not-builtin"], cache=tmp_path / "empty",
                                      on_state=lambda loc, state: states.append((loc, state)))
    assert done == [] and states == [(sign, "ready")]
    assert builtin_keys.is_ready(tmp_path / "keys", sign)


def test_setup_builtin_stops_before_a_key_when_asked(tmp_path: Path) -> None:
    from teeprover.errors import Cancelled

    states: list[tuple[str, str]] = []
    with pytest.raises(Cancelled, match="built-in key set-up stopped"):
        builtin_keys.setup_builtin(tmp_path / "keys", [OUTPUT], cache=tmp_path / "empty", should_stop=lambda: True,
                                   on_state=lambda loc, state: states.append((loc, state)))
    assert states == [] and not (tmp_path / "keys" / OUTPUT).exists()
    assert (tmp_path / "keys" / builtin_keys.LOCK_FILE).exists()  # the lock file stays for the next caller
