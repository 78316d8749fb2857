"""Key directories on disk (teeprover/keystore.py): what is trusted, what is refused, and what a failed write leaves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from teeprover.errors import InvalidInput, NotFound, Unavailable
from teeprover.keystore import KeyStore, check_location, made_for, read_key_dir, write_key_dir

CIRCUIT, PK, VK, VK_JSON = b"zkir bytes", b"proving key", b"verifying key", '{"protocol": "groth16"}'


def _write(directory: Path, **meta: object) -> None:
    write_key_dir(directory, circuit=CIRCUIT, prover_key=PK, verifier_key=VK, verification_key_json=VK_JSON,
                  meta={"circuit_sha256": "ab" * 32, **meta})


def test_written_keys_read_back_trusted_with_their_hashes(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    _write(store.path("user/a"), k=10)
    keys = store.get("user/a")
    assert (keys.location, keys.circuit, keys.prover_key, keys.verifier_key) == ("user/a", CIRCUIT, PK, VK)
    assert keys.trusted and keys.prover_key_sha256 == hashlib.sha256(PK).hexdigest()
    record = json.loads((tmp_path / "user/a/key.json").read_text())
    assert record["k"] == 10
    assert record["sha256"]["verification_key.json"] == hashlib.sha256(VK_JSON.encode()).hexdigest()
    assert sorted(p.name for p in (tmp_path / "user/a").iterdir()) == [
        "circuit.zkir", "key.json", "pk.cbor", "verification_key.json", "vk.cbor"]


def test_a_file_changed_after_setup_is_read_but_not_trusted(tmp_path: Path) -> None:
    _write(tmp_path / "k")
    (tmp_path / "k" / "pk.cbor").write_bytes(b"other proving key")
    keys = read_key_dir(tmp_path / "k", "k")
    assert keys.prover_key == b"other proving key" and not keys.trusted


@pytest.mark.parametrize("record", ["[]", '{"sha256": "not a table"}', '{"sha256": {}}', "{}"])
def test_a_key_json_without_a_hash_table_trusts_nothing(tmp_path: Path, record: str) -> None:
    _write(tmp_path / "k")
    (tmp_path / "k" / "key.json").write_text(record)
    assert not read_key_dir(tmp_path / "k", "k").trusted


def test_missing_keys_are_not_found_naming_the_location(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no keys for key_location 'user/none'") as err:
        KeyStore(tmp_path).get("user/none")
    assert err.value.details == {"key_location": "user/none"}
    _write(tmp_path / "user/half")
    (tmp_path / "user/half/vk.cbor").unlink()  # key.json present, a file gone
    with pytest.raises(NotFound, match="no keys for key_location"):
        KeyStore(tmp_path).get("user/half")


def test_unreadable_keys_are_not_found_with_the_reason(tmp_path: Path) -> None:
    _write(tmp_path / "bad-json")
    (tmp_path / "bad-json/key.json").write_text("{not json")
    with pytest.raises(NotFound, match="keys for 'bad-json' are unreadable: JSONDecodeError"):
        KeyStore(tmp_path).get("bad-json")
    _write(tmp_path / "dir-file")
    (tmp_path / "dir-file/pk.cbor").unlink()
    (tmp_path / "dir-file/pk.cbor").mkdir()  # a directory where a file should be: OSError, not FileNotFound
    with pytest.raises(NotFound, match="unreadable: IsADirectoryError"):
        KeyStore(tmp_path).get("dir-file")


@pytest.mark.parametrize("location", ["", "/abs", "a/../b", "..", "a/./b", "a//b", "a b", "a/b/", "x;rm",
                                      "/".join("a" * 9)])
def test_bad_key_locations_are_invalid_input(tmp_path: Path, location: str) -> None:
    with pytest.raises(InvalidInput, match="key_location must be path-like words"):
        KeyStore(tmp_path).path(location)


def test_good_key_locations_pass_unchanged() -> None:
    for location in ("builtin/demo/range", "a", "A_b-c.d/e", "/".join("a" * 8)):
        assert check_location(location) == location


def test_verifying_key_is_served_only_when_it_matches_key_json(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    _write(store.path("v"))
    assert store.verifying_key("v") == VK
    assert store.verifying_key("v", snarkjs_json=True) == VK_JSON.encode()
    (tmp_path / "v/verification_key.json").write_text("{}")
    with pytest.raises(NotFound, match="the verifying key of 'v' does not match its key.json"):
        store.verifying_key("v", snarkjs_json=True)
    assert store.verifying_key("v") == VK  # the other file is untouched and still served
    (tmp_path / "v/key.json").unlink()
    with pytest.raises(NotFound, match="no keys for key_location 'v'"):
        store.verifying_key("v")


def test_locations_lists_complete_key_directories_only(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    assert store.locations() == []  # no root yet
    _write(store.path("builtin/demo/range"))
    _write(store.path("user/x"))
    (tmp_path / "keys/user/incomplete").mkdir(parents=True)
    (tmp_path / "keys/user/incomplete/pk.cbor").write_bytes(PK)
    assert store.locations() == ["builtin/demo/range", "user/x"]


def test_made_for_needs_a_readable_record_of_the_same_circuit(tmp_path: Path) -> None:
    assert not made_for(tmp_path / "absent", "ab" * 32)
    _write(tmp_path / "k")
    assert made_for(tmp_path / "k", "ab" * 32) and not made_for(tmp_path / "k", "cd" * 32)
    (tmp_path / "k/key.json").write_text("[1, 2]")
    assert not made_for(tmp_path / "k", "ab" * 32)
    (tmp_path / "k/key.json").write_text("\xff garbage")
    assert not made_for(tmp_path / "k", "ab" * 32)


def test_a_failed_first_write_leaves_no_directory_and_no_temp_file(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_bytes(b"a file where the key tree should be")
    with pytest.raises(Unavailable, match="cannot write keys to k") as err:
        _write(blocker / "k")
    assert err.value.details == {"directory": str(blocker / "k")}
    assert blocker.read_bytes() == b"a file where the key tree should be"


def test_a_write_failing_midway_removes_the_new_files_of_a_fresh_directory(tmp_path: Path) -> None:
    target = tmp_path / "k"
    (target / "vk.cbor").mkdir(parents=True)  # os.replace onto a directory fails after two files are written
    with pytest.raises(Unavailable, match="cannot write keys to k: Is a directory"):
        _write(target)
    assert sorted(p.name for p in target.iterdir()) == ["vk.cbor"]  # the blocker only: no file, no .tmp
    assert not (target / "vk.cbor").is_file()


def test_a_failed_rewrite_keeps_the_complete_keys_already_there(tmp_path: Path) -> None:
    target = tmp_path / "k"
    _write(target)
    (target / "key.json").unlink()
    (target / "key.json").mkdir()  # the final write fails; the earlier complete set must not be deleted
    with pytest.raises(Unavailable):
        _write(target)
    assert (target / "pk.cbor").read_bytes() == PK and not list(target.glob(".*.tmp"))
