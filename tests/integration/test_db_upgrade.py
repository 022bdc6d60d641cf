"""``modelyard db upgrade`` on fresh SQLite and PostgreSQL databases, and what it builds.

The migrations must produce exactly the schema that ``catalog/tables.py`` declares (alembic's
autogenerate comparison finds nothing to do), and running them again must change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, insert, inspect, select

from modelyard.catalog.migrate import MIGRATIONS
from modelyard.catalog.tables import accounts, metadata
from tests.integration.conftest import BACKENDS
from tests.support.server import LiveServer, postgres_database

# Full-text search objects that the migrations create with raw SQL because the portable
# metadata cannot express them (see catalog/search.py). Only these may be absent from it.
FTS_TABLES = {"repo_fts"} | {f"repo_fts_{part}" for part in ("data", "idx", "content", "docsize", "config")}
UNMAPPED = {("table", name) for name in FTS_TABLES} | {
    ("column", "search_vector"), ("index", "ix_repos_search_vector"),
}


def _mapped(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """alembic ``include_object``: skip the database-only search objects, nothing else."""
    return not (reflected and compare_to is None and (type_, name) in UNMAPPED)


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LiveServer, Engine]]:
    """A hub whose database exists but is empty: no tables at all yet."""
    if request.param == "sqlite":
        live = LiveServer(tmp_path / "hub", None, "sqlite")
        (tmp_path / "hub").mkdir()
        engine = create_engine(f"sqlite:///{tmp_path / 'hub' / 'modelyard.db'}")
        yield live, engine
        engine.dispose()
        return
    with postgres_database() as url:
        engine = create_engine(url)
        yield LiveServer(tmp_path / "hub", url, "postgresql"), engine
        engine.dispose()


def _head() -> str:
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head


def test_db_upgrade_builds_schema_and_is_idempotent(fresh: tuple[LiveServer, Engine]) -> None:
    live, engine = fresh
    with engine.connect() as conn:
        assert inspect(conn).get_table_names() == []

    first = live.cli("db", "upgrade")
    assert first.stdout.strip() == "Database is up to date"
    with engine.begin() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == _head()
        tables = set(inspect(conn).get_table_names()) - FTS_TABLES
        assert tables == set(metadata.tables) | {"alembic_version"}
        conn.execute(insert(accounts).values(
            name="Keeper", name_lower="keeper", kind="user", fullname="", is_admin=False,
            default_private=False, created_at=datetime(2024, 1, 2, 3, 4, 5),
        ))

    second = live.cli("db", "upgrade")
    assert second.returncode == 0 and second.stdout.strip() == "Database is up to date"
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == _head()
        assert conn.execute(select(accounts.c.name, accounts.c.created_at)).all() == [
            ("Keeper", datetime(2024, 1, 2, 3, 4, 5))
        ]


def test_migrated_schema_matches_table_metadata(fresh: tuple[LiveServer, Engine]) -> None:
    live, engine = fresh
    live.cli("db", "upgrade")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": _mapped})
        differences = compare_metadata(context, metadata)
    assert differences == []
