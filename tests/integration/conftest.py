"""Fixtures for integration tests that own their server: they kill it, corrupt it, reseed it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import LiveServer, seeded_hub

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=BACKENDS)
def own_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running server per backend for one test module; tests may kill and restart it."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"own-{request.param}")) as hub, hub.running() as live:
        yield live


@pytest.fixture
def running_server(own_server: LiveServer) -> LiveServer:
    """``own_server``, started again if an earlier test left it killed."""
    if own_server.proc is None or own_server.proc.poll() is not None:
        own_server.stop()
        own_server.start()
    return own_server
