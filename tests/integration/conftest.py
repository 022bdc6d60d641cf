"""Fixtures for integration tests that own their server: they kill it, corrupt it, reseed it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.server import SEED, LiveServer, postgres_database

BACKENDS = ["sqlite", "postgresql"]


@contextmanager
def seeded_hub(backend: str, data_dir: Path) -> Iterator[LiveServer]:
    """A migrated, seeded hub on a fresh database (not started): its own, not the session one."""
    if backend == "sqlite":
        live = LiveServer(data_dir, None, "sqlite")
        live.cli("db", "upgrade")
        live.seed(SEED)
        yield live
    else:
        with postgres_database() as url:
            live = LiveServer(data_dir, url, "postgresql")
            live.cli("db", "upgrade")
            live.seed(SEED)
            yield live


@pytest.fixture(scope="module", params=BACKENDS)
def own_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A running server per backend for one test module; tests may kill and restart it."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"own-{request.param}")) as live:
        live.start()
        try:
            yield live
        finally:
            live.stop()


@pytest.fixture
def running_server(own_server: LiveServer) -> LiveServer:
    """``own_server``, started again if an earlier test left it killed."""
    if own_server.proc is None or own_server.proc.poll() is not None:
        own_server.stop()
        own_server.start()
    return own_server
