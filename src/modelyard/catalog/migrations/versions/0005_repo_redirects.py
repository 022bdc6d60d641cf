"""Redirects from the old names of moved repos

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('repo_redirects',
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('namespace', sa.String(length=96), nullable=False),
    sa.Column('name', sa.String(length=96), nullable=False),
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('repo_uid', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_repo_redirects_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('type', 'key', name=op.f('pk_repo_redirects'))
    )
    op.create_index('ix_repo_redirects_repo_id', 'repo_redirects', ['repo_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_repo_redirects_repo_id', table_name='repo_redirects')
    op.drop_table('repo_redirects')
