"""Commit authors as hub user names, for every kind of signature a history may hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from modelyard.config import Settings
from modelyard.ids import Oid
from modelyard.services.commits import commit_authors
from modelyard.services.hub import Hub
from modelyard.versioning.objects import CommitInfo
from tests.support.server import LiveServer, seeded_hub

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=BACKENDS)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"authors-{request.param}")) as server:
        _more_users(server)
        found = Hub(Settings(data_dir=server.data_dir, database_url=server.database_url))
        try:
            yield found
        finally:
            found.close()


def _more_users(server: LiveServer) -> None:
    server.cli("users", "create", "Dave", "--fullname", "Dave D", "--email", "shared@example.org")
    server.cli("users", "create", "erin", "--email", "shared@example.org")
    server.cli("users", "create", "frank", "--fullname", "Frank F", "--email", "frank@example.org")


def info(n: int, name: str, email: str) -> CommitInfo:
    oid = Oid(f"{n:040x}")
    return CommitInfo(oid, oid, (), name, email, datetime.now(UTC), "t", "t")


def test_every_kind_of_signature(hub: Hub) -> None:
    history = [
        info(1, "Alice A", "alice@users.modelyard"),  # written since: the user, whatever the display name
        info(2, "Dave D", "dave@users.modelyard"),  # the name's case as the account spells it
        info(3, "Alice A", "alice@example.com"),  # older commits: the account's own e-mail
        info(4, "Frank F", "frank@example.org"),
        info(5, "Dave D", "shared@example.org"),  # two users have this e-mail: not guessed
        info(6, "Someone", "someone@elsewhere.org"),  # an imported history: the signature's name
        info(7, "Ghost", "ghost@users.modelyard"),  # no such user (any more)
        info(8, "system", "system@modelyard.local"),
    ]
    assert list(commit_authors(hub, history).values()) == [
        "alice", "Dave", "alice", "frank", "Dave D", "Someone", "Ghost", "system",
    ]
    assert commit_authors(hub, []) == {}
