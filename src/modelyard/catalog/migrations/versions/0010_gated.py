"""Access requests to gated repos

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('repo_access_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('fields', sa.Text(), nullable=True),
    sa.Column('rejection_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_repo_access_requests_repo_id_repos'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['accounts.id'], name=op.f('fk_repo_access_requests_user_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repo_access_requests')),
    sa.UniqueConstraint('repo_id', 'user_id', name=op.f('uq_repo_access_requests_repo_id_user_id'))
    )
    op.create_index('ix_repo_access_requests_user_id', 'repo_access_requests', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_repo_access_requests_user_id', table_name='repo_access_requests')
    op.drop_table('repo_access_requests')
