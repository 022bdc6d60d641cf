"""Resource groups: sets of an org's repos with members of their own

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('resource_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=24), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=96), nullable=False),
    sa.Column('name_lower', sa.String(length=96), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['accounts.id'], name=op.f('fk_resource_groups_org_id_accounts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resource_groups')),
    sa.UniqueConstraint('org_id', 'name_lower', name=op.f('uq_resource_groups_org_id_name_lower')),
    sa.UniqueConstraint('uid', name=op.f('uq_resource_groups_uid'))
    )
    op.create_table('resource_group_members',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['resource_groups.id'],
                            name=op.f('fk_resource_group_members_group_id_resource_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['accounts.id'], name=op.f('fk_resource_group_members_user_id_accounts'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id', name=op.f('pk_resource_group_members'))
    )
    op.create_index('ix_resource_group_members_user_id', 'resource_group_members', ['user_id'], unique=False)
    # Plain ADD COLUMNs: a batch copy of ``repos`` on SQLite would drop the table, its search
    # triggers and every table that references it.
    op.add_column('repos', sa.Column('resource_group_id', sa.Integer(), nullable=True))
    op.add_column('repos', sa.Column('creator_id', sa.Integer(), nullable=True))
    op.create_index('ix_repos_resource_group_id', 'repos', ['resource_group_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_repos_resource_group_id', table_name='repos')
    with op.batch_alter_table('repos', schema=None) as batch_op:
        batch_op.drop_column('creator_id')
        batch_op.drop_column('resource_group_id')
    op.drop_index('ix_resource_group_members_user_id', table_name='resource_group_members')
    op.drop_table('resource_group_members')
    op.drop_table('resource_groups')
