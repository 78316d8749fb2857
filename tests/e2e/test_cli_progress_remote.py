"""A remote ``teeprover prove --url`` shows its stages on a terminal and nothing on a pipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stack import Stack
from tests.unit.test_cli_progress import CIRCUIT, PREIMAGE, finished_stages, run

pytestmark = pytest.mark.e2e


def test_remote_prove_shows_stages_on_a_terminal_only(stack: Stack, tmp_path: Path) -> None:
    args = ["prove", CIRCUIT, PREIMAGE, "--url", stack.url, "--api-key", stack.api_key or ""]
    code, _out, err = run([*args, "-o", str(tmp_path / "a.cbor")], tty=True)
    assert code == 0, err
    assert finished_stages(err) == [f"proving on {stack.url}", "computing the public inputs"], err
    code, _out, err = run([*args, "-o", str(tmp_path / "b.cbor")], tty=False)
    assert code == 0 and err == ""
