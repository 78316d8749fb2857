"""``teeprover serve`` (teeprover/commands/serve.py): a configuration mistake stops every service at once, in one line.

Run in-process through the CLI's ``main``; the services' configuration loaders refuse the environment before
anything listens, so nothing is started.
"""

from __future__ import annotations

import os

import pytest

from teeprover.cli import main
from teeprover.commands.serve import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_an_unknown_key_stops_the_service_with_one_line_on_stderr(service: str, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Regression: the line went to stdout, where the README promises every failure on stderr.
    monkeypatch.setenv("TEEPROVER_PROT", "6300")  # a typo of TEEPROVER_PORT
    assert main(["serve", service]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("teeprover: configuration error: unknown configuration keys: TEEPROVER_PROT")


def test_disable_auth_is_passed_to_the_services_as_their_key(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("TEEPROVER_DISABLE_AUTH", raising=False)
    monkeypatch.setenv("TEEPROVER_PORT", "not a port")  # stops the start after the flag was applied
    assert main(["serve", "gateway", "--disable-auth"]) == 2
    assert os.environ["TEEPROVER_DISABLE_AUTH"] == "true"
    assert "TEEPROVER_PORT" in capsys.readouterr().err
