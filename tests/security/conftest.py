"""Fixtures for the hostile-request tests: a quiet server of their own, where time and memory
measure the attack and nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import LiveServer, seeded_hub


@pytest.fixture(scope="module")
def quiet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running SQLite server for one test module."""
    with seeded_hub("sqlite", tmp_path_factory.mktemp("quiet")) as hub, hub.running() as live:
        yield live
