"""PostgreSQL full text: every word lexeme of the search vectors, for expanding prefix searches

A prefix term (``'llama':*``) makes GIN collect every posting of every matching lexeme into a
bitmap before it can intersect it with the other terms: at a million repos that costs more than
the rest of the search. With the lexemes in a table (byte order, so a prefix is a range), a
prefix that stands for a few words is searched as those words (``'llama' | 'llamas'``), which
GIN intersects cheaply (catalog/search.py ``_expand``).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute('CREATE TABLE search_lexemes (lexeme text COLLATE "C" PRIMARY KEY)')
    op.execute(
        "INSERT INTO search_lexemes (lexeme) SELECT DISTINCT w FROM repos, "
        "unnest(tsvector_to_array(search_vector)) AS w WHERE search_vector IS NOT NULL AND w NOT LIKE 't|%' "
        "ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE search_lexemes")
