"""Two transactions fanning out the same event at once (an event job and its repo's deletion, or
a job run twice): on PostgreSQL neither sees the other's uncommitted deliveries, so inserting
what a read found missing clashed on (event, webhook) and the request failed with a 500. The
insert skips conflicts instead; both transactions commit and the event has one delivery per
webhook. (SQLite has one writer at a time; it runs the same steps.)"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, insert, select

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import webhooks as webhooks_q
from modelyard.catalog.tables import webhook_deliveries
from modelyard.config import Settings
from modelyard.services.hub import Hub, utcnow
from tests.integration.conftest import BACKENDS
from tests.support.server import seeded_hub


@pytest.fixture(params=BACKENDS)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"race-{request.param}")) as live:
        made = Hub(Settings(data_dir=live.data_dir, database_url=live.database_url))
        try:
            yield made
        finally:
            made.close()


def test_the_same_deliveries_from_two_transactions_at_once(hub: Hub) -> None:
    with hub.db.write() as conn:
        alice = accounts_q.by_name(conn, "alice")
        assert alice is not None
        hooks = [webhooks_q.create(conn, uid=f"{n:024x}", owner_id=alice.id, url="http://127.0.0.1:9/",
                                   secret=None, domains=["repo"], watched=[], now=utcnow()) for n in (1, 2)]
    rows = [("event:1:t", hooks[0], "{}"), ("event:1:t", hooks[1], "{}"), ("event:2:t", hooks[0], "{}")]
    second: dict[str, object] = {}

    def fan_out_again() -> None:
        try:
            with hub.db.write() as conn:
                second["made"] = webhooks_q.add_many(conn, rows, utcnow())
        except Exception as exc:  # reported below
            second["error"] = exc

    with hub.db.write() as conn:
        assert webhooks_q.add_many(conn, rows, utcnow()) == 3
        other = threading.Thread(target=fan_out_again)
        other.start()  # its read cannot see these rows yet (PostgreSQL); SQLite waits to begin
        time.sleep(0.5)
        assert other.is_alive()  # held by the rows (or the writer lock) of this transaction
    other.join(30)
    assert not other.is_alive()
    assert "error" not in second, second.get("error")
    assert second["made"] == 0
    with hub.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar() == 3
    with hub.db.write() as conn:  # a webhook that has one keeps it; the one that has none gets it
        assert webhooks_q.add_deliveries(conn, "event:2:t", {hooks[0]: "{}", hooks[1]: "{}"}, utcnow()) == [hooks[1]]


def test_rows_pointing_at_a_repo_do_not_wait_for_its_lock(hub: Hub) -> None:
    """The repo's lock (``refs.lock``: commits, merges, gc, deletions, event jobs) lets rows that
    point at the repo go in meanwhile (PostgreSQL ``FOR NO KEY UPDATE``): a comment, which holds
    its thread's lock while it records its event, and a merge, which holds the repo's lock while
    it waits for the thread, never wait on each other in a cycle (a deadlock, seen in CI)."""
    from modelyard.catalog import refs as refs_q
    from modelyard.catalog.tables import repo_tags
    from modelyard.services.repos import create_repo
    from modelyard.services.sessions import principal_for

    with hub.db.read() as conn:
        alice = accounts_q.by_name(conn, "alice")
    assert alice is not None
    repo = create_repo(hub, principal_for(hub, alice), "model", None, f"locked-{uuid.uuid4().hex[:8]}", False,
                       lambda t, rid: rid)
    inserted = threading.Event()

    def insert_a_row() -> None:
        with hub.db.write() as conn:
            conn.execute(insert(repo_tags).values(repo_id=repo.id, tag="while-locked"))
        inserted.set()

    with hub.db.write() as conn:
        assert refs_q.lock(conn, repo.id) is not None
        other = threading.Thread(target=insert_a_row)
        other.start()
        done_while_locked = inserted.wait(5 if not hub.db.is_sqlite else 0.5)
    other.join(30)
    assert inserted.is_set()
    if not hub.db.is_sqlite:  # SQLite has one writer at a time: the insert waits for the lock's transaction
        assert done_while_locked
