"""Writers that take a repo's row and the catalog counter take them in one order, so that two of
them never wait on each other in a cycle (PostgreSQL: SQLite has one writer at a time).

Forced: a commit-like transaction holds repo B's row while the download tally, counting repos A
and B, starts; then the commit takes the catalog counter, as a commit to the default branch does.
Before the tally locked every repo it counts first, it took the counter for A and then waited for
B's row, which the commit held while waiting for the counter: PostgreSQL answered one of them with
"deadlock detected" (found by the full suite, where git clones count downloads beside commits).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.config import Settings
from modelyard.services.auth import principal_for
from modelyard.services.hub import Hub, utcnow
from modelyard.services.repos import create_repo
from tests.support.server import seeded_hub


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    with seeded_hub("postgresql", tmp_path / "hub") as live:
        made = Hub(Settings(data_dir=live.data_dir, database_url=live.database_url))
        try:
            yield made
        finally:
            made.close()


def test_a_download_tally_and_a_commit_never_deadlock(hub: Hub) -> None:
    alice = principal_for(hub, "alice")
    a = create_repo(hub, alice, "model", "alice", "lock-a", False, None).id
    b = create_repo(hub, alice, "model", "alice", "lock-b", False, None).id
    errors: list[BaseException] = []
    with hub.db.write() as conn:
        refs_q.lock(conn, b)  # the commit holds B's row
        hub.tallies.count_download(a, "client-1")
        hub.tallies.count_download(b, "client-1")

        def tally() -> None:
            try:
                hub.tallies._write(*_pending(hub))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        worker = threading.Thread(target=tally)
        worker.start()
        time.sleep(1.5)  # the tally is now waiting for B's row (it must not hold the counter)
        search_q.change_sort_keys(conn, b, last_modified=utcnow())  # the commit takes the counter
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert errors == []
    with hub.db.read() as conn:  # and both counts landed
        counted = [repos_q.get_by_id(conn, r) for r in (a, b)]
    assert [r.downloads_all_time if r else None for r in counted] == [1, 1]


def _pending(hub: Hub) -> tuple[set[tuple[int, str, int]], dict[int, object]]:
    """What the tally would fold now (taken out of it, as its flush does)."""
    tallies = hub.tallies
    with tallies._lock:
        marks, tallies._marks = tallies._marks, set()
    return marks, {}
