"""Collections, their items, and follows between accounts

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('oid', sa.String(length=24), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=256), nullable=False),
    sa.Column('title_key', sa.String(length=256), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.Column('theme', sa.String(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('upvotes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], name=op.f('fk_collections_owner_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections')),
    sa.UniqueConstraint('oid', name=op.f('uq_collections_oid')),
    sa.UniqueConstraint('owner_id', 'title_key', name=op.f('uq_collections_owner_id_title_key'))
    )
    op.create_table('collection_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('oid', sa.String(length=24), nullable=False),
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('item_type', sa.String(length=16), nullable=False),
    sa.Column('repo_id', sa.Integer(), nullable=True),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('item_key', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collections.id'], name=op.f('fk_collection_items_collection_id_collections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_collection_items_repo_id_repos'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['collections.id'], name=op.f('fk_collection_items_target_id_collections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_items')),
    sa.UniqueConstraint('collection_id', 'item_key', name=op.f('uq_collection_items_collection_id_item_key')),
    sa.UniqueConstraint('oid', name=op.f('uq_collection_items_oid'))
    )
    op.create_index('ix_collection_items_repo_id', 'collection_items', ['repo_id'], unique=False)
    op.create_index('ix_collection_items_target_id', 'collection_items', ['target_id'], unique=False)
    op.create_table('follows',
    sa.Column('follower_id', sa.Integer(), nullable=False),
    sa.Column('followed_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['followed_id'], ['accounts.id'], name=op.f('fk_follows_followed_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['follower_id'], ['accounts.id'], name=op.f('fk_follows_follower_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('follower_id', 'followed_id', name=op.f('pk_follows'))
    )
    op.create_index('ix_follows_followed_id', 'follows', ['followed_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_follows_followed_id', table_name='follows')
    op.drop_table('follows')
    op.drop_index('ix_collection_items_target_id', table_name='collection_items')
    op.drop_index('ix_collection_items_repo_id', table_name='collection_items')
    op.drop_table('collection_items')
    op.drop_table('collections')
