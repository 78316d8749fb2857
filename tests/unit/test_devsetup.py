"""serve all's first-start set-up (services/supervisor/devsetup.py) at the smallest dev parameters the config allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.supervisor import devsetup
from teeprover.circuits import DEMO_CIRCUITS, demo_circuit, demo_circuit_ks, demo_params_k
from teeprover.errors import InvalidInput
from teeprover.keystore import made_for, read_key_dir
from teeprover.params.manifest import load_manifest
from teeprover.zkir import load_circuit


def test_first_start_sets_up_every_demo_key_at_the_minimum_and_not_below(tmp_path: Path) -> None:
    least, circuit = demo_params_k()
    # One below (what TEEPROVER_DEV_PARAMS_MAX_K may no longer be): that circuit's keys cannot be set up.
    with pytest.raises(InvalidInput, match=f"no parameters of size >= {least}"):
        devsetup.prepare(tmp_path, least - 1)
    assert not (tmp_path / "keys" / circuit / "key.json").exists()

    manifest = devsetup.prepare(tmp_path, least)
    assert manifest == devsetup.manifest_path(tmp_path)
    assert sorted(load_manifest(manifest).entries) == list(range(10, least + 1))
    for location in DEMO_CIRCUITS:
        target = tmp_path / "keys" / location
        assert made_for(target, load_circuit(demo_circuit(location)).digest().hex())
        assert read_key_dir(target, location).trusted
    assert demo_circuit_ks()[circuit] == least
