"""Hardening: never-reused repo uids for grants, per-client download marks

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy of ``repos``: on SQLite that would drop the table and
    # cascade into every table that references it).
    op.add_column('repos', sa.Column('uid', sa.String(length=32), server_default='', nullable=False))
    bind = op.get_bind()
    for (repo_id,) in bind.execute(sa.text('SELECT id FROM repos')).all():
        bind.execute(sa.text('UPDATE repos SET uid = :uid WHERE id = :id'), {'uid': secrets.token_hex(16), 'id': repo_id})
    op.create_index('ix_repos_uid', 'repos', ['uid'], unique=True)
    op.create_table('download_marks',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('client', sa.String(length=32), nullable=False),
    sa.Column('period', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_download_marks_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'client', 'period', name=op.f('pk_download_marks'))
    )
    op.create_index('ix_download_marks_period', 'download_marks', ['period'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_download_marks_period', table_name='download_marks')
    op.drop_table('download_marks')
    op.drop_index('ix_repos_uid', table_name='repos')
    with op.batch_alter_table('repos', schema=None) as batch_op:
        batch_op.drop_column('uid')
