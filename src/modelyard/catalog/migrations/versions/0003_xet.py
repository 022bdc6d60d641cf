"""Xet storage: xorbs, shards, file reconstructions, per-repo Xet files, global dedup chunks

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('xet_shards',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_xet_shards'))
    )
    op.create_table('xet_xorbs',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('num_chunks', sa.Integer(), nullable=False),
    sa.Column('unpacked_size', sa.BigInteger(), nullable=False),
    sa.Column('stored_size', sa.BigInteger(), nullable=False),
    sa.Column('chunks', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_xet_xorbs'))
    )
    op.create_table('xet_dedup_chunks',
    sa.Column('chunk_hash', sa.String(length=64), nullable=False),
    sa.Column('xorb_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['xorb_hash'], ['xet_xorbs.hash'], name=op.f('fk_xet_dedup_chunks_xorb_hash_xet_xorbs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('chunk_hash', name=op.f('pk_xet_dedup_chunks'))
    )
    with op.batch_alter_table('xet_dedup_chunks', schema=None) as batch_op:
        batch_op.create_index('ix_xet_dedup_chunks_xorb_hash', ['xorb_hash'], unique=False)

    op.create_table('xet_files',
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('terms', sa.LargeBinary(), nullable=False),
    sa.Column('shard', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['shard'], ['xet_shards.hash'], name=op.f('fk_xet_files_shard_xet_shards')),
    sa.PrimaryKeyConstraint('hash', name=op.f('pk_xet_files'))
    )
    with op.batch_alter_table('xet_files', schema=None) as batch_op:
        batch_op.create_index('ix_xet_files_sha256', ['sha256'], unique=False)
        batch_op.create_index('ix_xet_files_shard', ['shard'], unique=False)

    op.create_table('repo_xet_files',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('file_hash', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('pushed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['file_hash'], ['xet_files.hash'], name=op.f('fk_repo_xet_files_file_hash_xet_files')),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_repo_xet_files_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'sha256', name=op.f('pk_repo_xet_files'))
    )
    with op.batch_alter_table('repo_xet_files', schema=None) as batch_op:
        batch_op.create_index('ix_repo_xet_files_file_hash', ['file_hash'], unique=False)

    op.create_table('xet_file_xorbs',
    sa.Column('file_hash', sa.String(length=64), nullable=False),
    sa.Column('xorb_hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['file_hash'], ['xet_files.hash'], name=op.f('fk_xet_file_xorbs_file_hash_xet_files'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['xorb_hash'], ['xet_xorbs.hash'], name=op.f('fk_xet_file_xorbs_xorb_hash_xet_xorbs')),
    sa.PrimaryKeyConstraint('file_hash', 'xorb_hash', name=op.f('pk_xet_file_xorbs'))
    )
    with op.batch_alter_table('xet_file_xorbs', schema=None) as batch_op:
        batch_op.create_index('ix_xet_file_xorbs_xorb_hash', ['xorb_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('xet_file_xorbs', schema=None) as batch_op:
        batch_op.drop_index('ix_xet_file_xorbs_xorb_hash')

    op.drop_table('xet_file_xorbs')
    with op.batch_alter_table('repo_xet_files', schema=None) as batch_op:
        batch_op.drop_index('ix_repo_xet_files_file_hash')

    op.drop_table('repo_xet_files')
    with op.batch_alter_table('xet_files', schema=None) as batch_op:
        batch_op.drop_index('ix_xet_files_shard')
        batch_op.drop_index('ix_xet_files_sha256')

    op.drop_table('xet_files')
    with op.batch_alter_table('xet_dedup_chunks', schema=None) as batch_op:
        batch_op.drop_index('ix_xet_dedup_chunks_xorb_hash')

    op.drop_table('xet_dedup_chunks')
    op.drop_table('xet_xorbs')
    op.drop_table('xet_shards')
