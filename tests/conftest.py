"""Shared pytest fixtures: one real stack per test session for the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.midnight import MidnightOracle, npm_available, shared_oracle
from tests.support.stack import Stack, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("stack"), TEEPROVER_MAX_BODY_BYTES="1048576") as s:
        yield s


@pytest.fixture()
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def midnight() -> Iterator[MidnightOracle]:
    """Midnight's npm packages in one node process (installed into the cache on first use)."""
    if not npm_available():
        pytest.fail("node and npm are needed for the Midnight oracle tests")
    oracle = shared_oracle()
    yield oracle
    oracle.close()
