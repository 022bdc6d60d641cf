"""SQLite full text: a column of tag tokens beside name and body

A search with words and tag filters becomes one FTS5 query that intersects posting lists (as the
``t|tag`` lexemes of PostgreSQL's search vector do), instead of a probe of ``repo_tags`` per
full-text match. Each tag is one token: ``t`` and the hex of its UTF-8 bytes (catalog/search.py).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE VIRTUAL TABLE repo_fts_new USING fts5(name, body, tags, "
               "tokenize='unicode61 remove_diacritics 2')")
    op.execute(
        "INSERT INTO repo_fts_new (rowid, name, body, tags) SELECT f.rowid, f.name, f.body, "
        "COALESCE((SELECT group_concat('t' || lower(hex(t.tag)), ' ') FROM repo_tags t WHERE t.repo_id = f.rowid), '') "
        "FROM repo_fts f"
    )
    op.execute("DROP TABLE repo_fts")
    op.execute("ALTER TABLE repo_fts_new RENAME TO repo_fts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE VIRTUAL TABLE repo_fts_old USING fts5(name, body, tokenize='unicode61 remove_diacritics 2')")
    op.execute("INSERT INTO repo_fts_old (rowid, name, body) SELECT rowid, name, body FROM repo_fts")
    op.execute("DROP TABLE repo_fts")
    op.execute("ALTER TABLE repo_fts_old RENAME TO repo_fts")
