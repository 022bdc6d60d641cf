"""Listing discussions and reading a thread cost a number of SQL statements that does not grow
with the page or the thread (SQLite and PostgreSQL): counted on an in-process ``Hub`` opened on
the live server's database, as ``GET .../discussions`` and ``GET .../discussions/N`` build them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from huggingface_hub import HfApi
from sqlalchemy import event

from modelyard.config import Settings
from modelyard.services import discussions
from modelyard.services.auth import principal_for
from modelyard.services.hub import Hub
from tests.support.server import LiveServer


def counting(server: LiveServer, work: Callable[[Hub], Any]) -> tuple[int, Any]:
    hub = Hub(Settings(data_dir=server.data_dir, database_url=server.database_url))
    try:
        work(hub)  # connections opened, caches warm: only the statements of the work itself count
        count = [0]

        def counted(*_args: object) -> None:
            count[0] += 1

        for engine in (hub.db._read, hub.db._write):
            event.listen(engine, "before_cursor_execute", counted)
        result = work(hub)
        return count[0], result
    finally:
        hub.close()


def test_statements_do_not_grow_with_pages_or_threads(api: HfApi, server: LiveServer, repo_name: str) -> None:
    small, large = (api.create_repo(f"{repo_name}-{n}").repo_id for n in ("small", "large"))
    for rid, threads in ((small, 2), (large, 12)):
        for i in range(threads):
            api.create_discussion(rid, f"t{i}")
    short = api.create_discussion(small, "short thread").num
    long = api.create_discussion(large, "long thread").num
    for rid, num, comments in ((small, short, 1), (large, long, 15)):
        for i in range(comments):
            said = api.comment_discussion(rid, num, f"c{i}")
            api.edit_discussion_comment(rid, num, said.id, f"c{i} edited")
        api.rename_discussion(rid, num, "renamed")
        api.change_discussion_status(rid, num, "closed")

    def listing(rid: str) -> Callable[[Hub], Any]:
        return lambda hub: discussions.list_threads(hub, principal_for(hub, "alice"), "model", rid, 0)

    def reading(rid: str, num: int) -> Callable[[Hub], Any]:
        return lambda hub: discussions.details(hub, principal_for(hub, "alice"), "model", rid, num, True)

    few, (threads_few, *_rest) = counting(server, listing(small))
    many, (threads_many, *_rest) = counting(server, listing(large))
    assert (len(threads_few), len(threads_many)) == (3, 13)
    assert few == many, f"{few} statements for a page of 3, {many} for 13"
    short_cost, short_details = counting(server, reading(small, short))
    long_cost, long_details = counting(server, reading(large, long))
    assert (len(short_details.events), len(long_details.events)) == (4, 18)
    assert sum(len(v) for v in long_details.history.values()) == 15
    assert short_cost == long_cost, f"{short_cost} statements for 4 events, {long_cost} for 18"
