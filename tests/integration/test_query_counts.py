"""Listing pages cost a number of SQL statements that does not grow with the page size, and the
leaderboard fills a page with what the caller may see (SQLite and PostgreSQL).

Statements are counted on the engines of an in-process ``Hub`` opened on the live server's
database, with cold caches, while it builds a page the way ``GET /api/models`` does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from huggingface_hub import HfApi
from safetensors.numpy import save
from sqlalchemy import create_engine, event, insert, select, update

from modelyard.catalog.tables import eval_results, repos
from modelyard.config import Settings
from modelyard.services import discovery
from modelyard.services.auth import principal_for
from modelyard.services.hub import Hub
from tests.integration.conftest import BACKENDS
from tests.support.catalog import bulk_create_repos
from tests.support.server import TOKENS, LiveServer, seeded_hub

WORD = "qcountz"


@pytest.fixture(scope="module", params=BACKENDS)
def listed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Ten models with cards, weights, nested folders and lineage; nine private leaderboard
    entries of a vault repo's owner ranking above two public ones."""
    with seeded_hub(request.param, tmp_path_factory.mktemp(f"counts-{request.param}")) as hub, hub.running() as live:
        api = HfApi(endpoint=live.url, token=TOKENS["alice"])
        base = api.create_repo(f"acme/{WORD}-base").repo_id
        for i in range(10):
            rid = api.create_repo(f"acme/{WORD}-{i}").repo_id
            card = f"---\nlicense: mit\nbase_model: {base}\n---\n# {WORD} {i}\n"
            api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=rid)
            weights = save({"w": np.zeros((100 + i,), dtype=np.float32)})
            api.upload_file(path_or_fileobj=io.BytesIO(weights), path_in_repo="sub/dir/model.safetensors",
                            repo_id=rid)
        for i in range(2):
            rid = api.create_repo(f"acme/{WORD}-board-{i}").repo_id
            api.upload_file(path_or_fileobj=board_card(50 - i).encode(), path_in_repo="README.md", repo_id=rid)
        live.settle()
        private_entries_above(live, 1001)
        yield live


def private_entries_above(server: LiveServer, count: int) -> None:
    """``count`` private repos of org vault whose reported accuracy beats every public one
    (seeded straight into the database: creating them through the API would take minutes)."""
    names = [f"{WORD}-secret-{i}" for i in range(count)]
    url = server.database_url or f"sqlite:///{server.data_dir / 'modelyard.db'}"
    bulk_create_repos(url, "vault", names)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            ids = [r.id for r in conn.execute(select(repos.c.id).where(repos.c.name.in_(names)).order_by(repos.c.id))]
            conn.execute(update(repos).where(repos.c.id.in_(ids)).values(private=True))
            conn.execute(insert(eval_results), [{
                "repo_id": pk, "task_type": "text-classification", "dataset_type": "glue", "dataset_name": "GLUE",
                "metric_type": "accuracy", "metric_name": None, "metric_value": 90.0 + i / 1000, "verified": False,
            } for i, pk in enumerate(ids)])
    finally:
        engine.dispose()


def board_card(value: float) -> str:
    index = [{"name": "m", "results": [{"task": {"type": "text-classification"},
                                        "dataset": {"type": "glue", "name": "GLUE"},
                                        "metrics": [{"type": "accuracy", "value": value}]}]}]
    return "---\n" + json.dumps({"model-index": index}) + "\n---\n# board\n"


def statements_for(server: LiveServer, limit: int) -> tuple[int, int]:
    """(statements, items) to build one listing page of ``limit`` items with everything expanded."""
    hub = Hub(Settings(data_dir=server.data_dir, database_url=server.database_url))
    try:
        principal = principal_for(hub, "alice")
        count = [0]

        def counted(*_args: object) -> None:
            count[0] += 1

        for engine in (hub.db._read, hub.db._write):
            event.listen(engine, "before_cursor_execute", counted)
        params = discovery.ListParams(search=[WORD], filters=["license:mit"], limit=limit, sort="createdAt")
        items, _cursor = discovery.list_page(hub, principal, "model", params, full=True, extra=True)
        assert all(i.files and "sub/dir/model.safetensors" in i.files and i.sha for i in items)
        assert all(i.bases == [(f"acme/{WORD}-base", "finetune")] for i in items)
        return count[0], len(items)
    finally:
        hub.close()


def test_statements_per_listing_page_do_not_grow_with_its_size(listed: LiveServer) -> None:
    small, n_small = statements_for(listed, 2)
    large, n_large = statements_for(listed, 10)
    assert (n_small, n_large) == (2, 10)
    assert small == large, f"{small} statements for 2 items, {large} for 10"
    # and through the API, the same page is what the client gets
    r = httpx.get(f"{listed.url}/api/models", params={"search": WORD, "filter": "license:mit", "full": "true",
                                                       "limit": 10})
    assert len(r.json()) == 10 and all(m["siblings"] and m["sha"] for m in r.json())


def test_the_leaderboard_fills_pages_with_what_the_caller_may_see(listed: LiveServer) -> None:
    """1,001 private entries rank above the two public ones: outsiders still get a full page."""
    query = {"task": "text-classification", "dataset": "glue", "metric": "accuracy", "limit": 2}
    outsider = httpx.get(f"{listed.url}/api/leaderboard", params=query).json()
    assert [e["id"] for e in outsider] == [f"acme/{WORD}-board-0", f"acme/{WORD}-board-1"]
    assert [e["value"] for e in outsider] == [50.0, 49.0]
    member = httpx.get(f"{listed.url}/api/leaderboard", params=query,
                       headers={"Authorization": f"Bearer {TOKENS['alice']}"}).json()
    assert [e["id"] for e in member] == [f"vault/{WORD}-secret-1000", f"vault/{WORD}-secret-999"]
