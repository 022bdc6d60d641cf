"""``modelyard db upgrade`` on fresh SQLite and PostgreSQL databases, and what it builds.

The migrations must produce exactly the schema that ``catalog/tables.py`` declares (alembic's
autogenerate comparison finds nothing to do), and running them again must change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, insert, inspect, select, text

from modelyard.catalog import search as search_q
from modelyard.catalog.database import Database
from modelyard.catalog.migrate import MIGRATIONS, alembic_config
from modelyard.catalog.tables import accounts, metadata
from tests.integration.conftest import BACKENDS
from tests.support.server import LiveServer, postgres_database

# Full-text search objects that the migrations create with raw SQL because the portable
# metadata cannot express them (see catalog/search.py). Only these may be absent from it.
FTS_TABLES = {"repo_fts"} | {f"repo_fts_{part}" for part in ("data", "idx", "content", "docsize", "config")} | {
    "search_lexemes",  # PostgreSQL only: the words of the search vectors (migration 0014)
}
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


def test_0013_carries_the_full_text_over_with_tag_tokens(tmp_path: Path) -> None:
    """SQLite's FTS5 table gains a column of tag tokens: the rows of an older database keep their
    text and get their tags from ``repo_tags``, as ``set_search_text`` writes them now."""
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    match = "SELECT rowid FROM repo_fts WHERE repo_fts MATCH :m ORDER BY rowid"
    try:
        with engine.connect() as conn:
            command.upgrade(alembic_config(conn), "0012")
            conn.exec_driver_sql("INSERT INTO repo_fts (rowid, name, body) VALUES "
                                 "(7, 'acme llama acme/llama', 'a chat model'), (8, 'acme llama2', 'chat')")
            conn.exec_driver_sql("INSERT INTO repo_tags (repo_id, tag) VALUES (7, 'license:mit'), (7, 'en'), "
                                 "(8, 'license:apache-2.0')")
            conn.commit()
            command.upgrade(alembic_config(conn), "head")
            conn.commit()
            mit = f'{{name body}} : ("chat") AND tags : "{search_q.tag_token("license:mit")}"'
            assert [r[0] for r in conn.execute(text(match), {"m": mit})] == [7]
            both = f'tags : "{search_q.tag_token("en")}" AND tags : "{search_q.tag_token("license:mit")}"'
            assert [r[0] for r in conn.execute(text(match), {"m": both})] == [7]
            assert [r[0] for r in conn.execute(text(match), {"m": '{name body} : ("chat")'})] == [7, 8]
            # the tokens never match a search word: "mit" is not in anyone's name or body
            assert [r[0] for r in conn.execute(text(match), {"m": '{name body} : ("mit")'})] == []
            command.downgrade(alembic_config(conn), "0012")
            conn.commit()
            assert [r[0] for r in conn.execute(text(match), {"m": '"chat"'})] == [7, 8]
    finally:
        engine.dispose()


def test_0014_lists_the_words_of_every_search_vector() -> None:
    """PostgreSQL: the words of the vectors already there go into search_lexemes (tag lexemes
    do not: no search word can be a tag), and a later ``set_search_text`` adds its new words."""
    with postgres_database() as url:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                command.upgrade(alembic_config(conn), "0013")
                conn.exec_driver_sql(
                    "INSERT INTO accounts (name, name_lower, kind, fullname, is_admin, default_private, created_at) "
                    "VALUES ('acme', 'acme', 'org', '', false, false, now())")
                conn.exec_driver_sql(
                    "INSERT INTO repos (uid, type, namespace, name, key, owner_id, private, created_at, "
                    "last_modified, used_storage, downloads, downloads_all_time, likes, trending_score, tags, "
                    "created_seq, change_seq, search_vector) SELECT 'u1', 'model', 'acme', 'llama', 'acme/llama', "
                    "id, false, now(), now(), 0, 0, 0, 0, 0, '[]', 0, 0, "
                    "array_to_tsvector(ARRAY['acme', 'llama', 'chat', 't|license:mit']) FROM accounts")
                conn.commit()
                command.upgrade(alembic_config(conn), "head")
                conn.commit()
                words = [r[0] for r in conn.exec_driver_sql("SELECT lexeme FROM search_lexemes ORDER BY lexeme")]
                assert words == ["acme", "chat", "llama"]
                db = Database(url)
                try:
                    with db.write() as w:
                        repo_id = w.exec_driver_sql("SELECT id FROM repos").scalar_one()
                        search_q.set_search_text(db, w, repo_id, "acme llama", "a llamas chat", ["license:mit"])
                finally:
                    db.dispose()
                words = [r[0] for r in conn.exec_driver_sql("SELECT lexeme FROM search_lexemes ORDER BY lexeme")]
                assert words == ["a", "acme", "chat", "llama", "llamas"]
                command.downgrade(alembic_config(conn), "0013")
                conn.commit()
                assert "search_lexemes" not in inspect(conn).get_table_names()
        finally:
            engine.dispose()
