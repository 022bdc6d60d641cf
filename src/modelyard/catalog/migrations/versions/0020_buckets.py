"""Buckets: mutable maps from paths to Xet files

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bucket_files',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('xet_hash', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mtime', sa.BigInteger(), nullable=True),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_bucket_files_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'path', name=op.f('pk_bucket_files'))
    )
    op.create_index('ix_bucket_files_xet_hash', 'bucket_files', ['xet_hash'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_bucket_files_xet_hash', table_name='bucket_files')
    op.drop_table('bucket_files')
