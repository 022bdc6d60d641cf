"""LFS file management: the large files each repository permanently deleted

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('repo_purged_lfs',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('purged_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_repo_purged_lfs_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'sha256', name=op.f('pk_repo_purged_lfs'))
    )


def downgrade() -> None:
    op.drop_table('repo_purged_lfs')
