"""Mirrors: repos served from an upstream hub, with their pinned commits

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (see 0019): a batch copy of ``repos`` on SQLite would drop its triggers.
    op.add_column('repos', sa.Column('upstream', sa.String(length=512), nullable=True))
    op.create_table('mirror_repos',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('upstream_type', sa.String(length=8), nullable=False),
    sa.Column('upstream_id', sa.String(length=200), nullable=False),
    sa.Column('refs_checked_at', sa.DateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('revisions', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_mirror_repos_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', name=op.f('pk_mirror_repos'))
    )
    op.create_table('mirror_pins',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('oid', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_mirror_pins_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'oid', name=op.f('pk_mirror_pins'))
    )


def downgrade() -> None:
    op.drop_table('mirror_pins')
    op.drop_table('mirror_repos')
    op.drop_column('repos', 'upstream')
