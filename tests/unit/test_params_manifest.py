"""Laws of the parameter manifest: what parses, what is refused and as which error."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from teeprover.errors import InvalidInput, MalformedEncoding, NotFound
from teeprover.params.manifest import (
    ParamEntry,
    default_manifest_path,
    load_manifest,
    mirror_file_url,
    parse_manifest,
    save_manifest,
)

SHA = "ab" * 32
GOOD: dict[str, Any] = {
    "schema_version": 1,
    "description": "test",
    "mirrors": ["https://example.org/ptau/", "http://10.0.0.1:8080/p", "file:///srv/ptau"],
    "params": [
        {"k": 10, "file": "p10.ptau", "size": 100, "sha256": SHA, "insecure": False},
        {"k": 24, "file": "p24.ptau", "size": 1 << 40, "sha256": "cd" * 32, "insecure": True},
    ],
}


def _doc(**changes: object) -> dict:
    doc = copy.deepcopy(GOOD)
    doc.update(changes)
    return doc


def _entry(**changes: object) -> dict:
    e = dict(GOOD["params"][0])
    e.update(changes)
    return _doc(params=[e])


def test_manifest_parses_and_round_trips() -> None:
    m = parse_manifest(json.dumps(GOOD))
    assert m.mirrors == tuple(GOOD["mirrors"])
    assert m.entry(10) == ParamEntry(k=10, file_name="p10.ptau", size=100, sha256=SHA, insecure=False)
    assert m.entry(24).insecure is True
    assert parse_manifest(m.to_bytes()) == m


def test_manifest_entry_rejects_k_out_of_range_and_absent_k() -> None:
    m = parse_manifest(json.dumps(GOOD))
    with pytest.raises(InvalidInput):
        m.entry(9)
    with pytest.raises(InvalidInput):
        m.entry(25)
    with pytest.raises(NotFound):
        m.entry(12)


def test_mirror_file_url_joins_base_and_name() -> None:
    assert mirror_file_url("https://h/p/", "a.ptau") == "https://h/p/a.ptau"
    assert mirror_file_url("https://h/p", "a.ptau") == "https://h/p/a.ptau"


def test_default_manifest_is_valid(tmp_path) -> None:
    m = load_manifest(default_manifest_path())
    assert m.schema_version == 1
    save_manifest(m.with_entry(ParamEntry(k=12, file_name="dev.ptau", size=1, sha256=SHA, insecure=True)),
                  tmp_path / "m.json")
    assert load_manifest(tmp_path / "m.json").entry(12).insecure


@pytest.mark.parametrize("data", [
    b"", b"not json", b"[]", b'"x"', b"\xff\xfe",
    json.dumps(_doc(extra=1)).encode(),
    json.dumps({k: v for k, v in GOOD.items() if k != "mirrors"}).encode(),
    json.dumps(_doc(schema_version="1")).encode(),
    json.dumps(_doc(mirrors="https://x/")).encode(),
    json.dumps(_doc(mirrors=[1])).encode(),
    json.dumps(_doc(params={})).encode(),
    json.dumps(_doc(params=[[10]])).encode(),
    json.dumps(_entry(size="100")).encode(),
    json.dumps(_entry(size=True)).encode(),
    json.dumps(_entry(k=10.0)).encode(),
    json.dumps(_entry(insecure=0)).encode(),
    json.dumps(_entry(extra="x")).encode(),
    json.dumps(_doc(params=[{"k": 10, "file": "a", "size": 1, "sha256": SHA}])).encode(),
    b'{"schema_version": 1, "schema_version": 1, "mirrors": [], "params": []}',
])
def test_malformed_manifest_is_malformed_encoding(data: bytes) -> None:
    with pytest.raises(MalformedEncoding):
        parse_manifest(data)


@pytest.mark.parametrize("doc", [
    _doc(schema_version=2),
    _entry(k=9), _entry(k=25),
    _entry(size=0), _entry(size=-1),
    _entry(sha256="AB" * 32), _entry(sha256="ab" * 31), _entry(sha256="zz" * 32),
    _entry(file="../escape"), _entry(file="dir/x"), _entry(file=".hidden"), _entry(file=""),
    _entry(file="x.partial"),
    _doc(mirrors=["ftp://h/p/"]), _doc(mirrors=["https:///nohost"]), _doc(mirrors=["file://host/p"]),
    _doc(mirrors=["https://h/p?q=1"]), _doc(mirrors=["https://h/", "https://h/"]),
    _doc(params=[GOOD["params"][0], GOOD["params"][0]]),
    _doc(params=[GOOD["params"][0], dict(GOOD["params"][1], file="p10.ptau")]),
])
def test_invalid_manifest_values_are_invalid_input(doc: dict) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_manifest(json.dumps(doc))
    assert not isinstance(err.value, MalformedEncoding)


def test_load_manifest_missing_file_is_invalid_input(tmp_path) -> None:
    with pytest.raises(InvalidInput):
        load_manifest(tmp_path / "absent.json")
