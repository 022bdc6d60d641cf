"""Hardening: never-reused repo uids for grants, per-client download marks, a refs version for gc, events for background jobs

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
    op.add_column('repos', sa.Column('refs_version', sa.BigInteger(), server_default='0', nullable=False))
    op.create_table('download_marks',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('client', sa.String(length=32), nullable=False),
    sa.Column('period', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_download_marks_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'client', 'period', name=op.f('pk_download_marks'))
    )
    op.create_index('ix_download_marks_period', 'download_marks', ['period'], unique=False)
    op.create_table('events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('ref', sa.String(length=300), nullable=True),
    sa.Column('old', sa.String(length=40), nullable=True),
    sa.Column('new', sa.String(length=40), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('done_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_events_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    op.create_index('ix_events_pending', 'events', ['done_at', 'next_attempt_at'], unique=False)
    op.create_index('ix_events_repo_id', 'events', ['repo_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_events_repo_id', table_name='events')
    op.drop_index('ix_events_pending', table_name='events')
    op.drop_table('events')
    op.drop_index('ix_download_marks_period', table_name='download_marks')
    op.drop_table('download_marks')
    op.drop_index('ix_repos_uid', table_name='repos')
    with op.batch_alter_table('repos', schema=None) as batch_op:
        batch_op.drop_column('refs_version')
        batch_op.drop_column('uid')
