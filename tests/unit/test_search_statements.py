"""The PostgreSQL search statement reads every column its conditions need from its materialised
matches: a condition on a column the ``found`` CTE lacks stays a reference to ``repos``,
correlated with the outer row, and a search of 100,000 repos took seconds instead of
milliseconds (a member of resource groups, before ``resource_group_id`` was in the CTE)."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql

from modelyard.catalog import search as search_q
from modelyard.catalog.database import Database
from modelyard.catalog.visibility import EVERYTHING, PUBLIC, Visibility


def test_every_condition_reads_the_materialised_matches() -> None:
    db = Database("postgresql+psycopg://postgres@127.0.0.1:5432/test")  # never connects: only compiled
    try:
        for visible in (PUBLIC, EVERYTHING, Visibility(owners=frozenset({1}), ungrouped=frozenset({2}),
                                                       groups=frozenset({3, 4}))):
            q = search_q.SearchQuery(
                repo_type="model", search=["llama"], author="acme", filters=["license:mit"], pipeline_tag="fill-mask",
                min_params=1, max_params=10**9, gated=False, sort="downloads", limit=50, cursor=None, visible=visible,
            )
            stmt = search_q._matched_page(db, None, q, "'llama'", search_q.SORT_COLUMNS["downloads"], [])  # type: ignore[arg-type]
            sql = str(stmt.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
            inner = sql.split("FROM found", 1)[1].split("ORDER BY", 1)[0]
            assert "repos." not in inner, sql
    finally:
        db.dispose()
