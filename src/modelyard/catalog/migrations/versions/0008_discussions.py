"""Discussions and pull requests: their events, comment edit history, a PR's base and merge commit

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('discussions') as batch:
        batch.add_column(sa.Column('base_ref', sa.String(length=300), nullable=True))
        batch.add_column(sa.Column('merge_commit', sa.String(length=40), nullable=True))
    # PRs opened before this revision were all opened against main (create_commit(create_pr=True)).
    op.execute("UPDATE discussions SET base_ref = 'refs/heads/main' WHERE is_pull_request")
    op.create_table('discussion_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('discussion_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['accounts.id'], name=op.f('fk_discussion_events_author_id_accounts')),
    sa.ForeignKeyConstraint(['discussion_id'], ['discussions.id'], name=op.f('fk_discussion_events_discussion_id_discussions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discussion_events'))
    )
    op.create_index('ix_discussion_events_discussion_id_id', 'discussion_events', ['discussion_id', 'id'], unique=False)
    op.create_table('discussion_comment_edits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('discussion_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('raw', sa.Text(), nullable=False),
    sa.Column('html', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['accounts.id'], name=op.f('fk_discussion_comment_edits_author_id_accounts')),
    sa.ForeignKeyConstraint(['discussion_id'], ['discussions.id'], name=op.f('fk_discussion_comment_edits_discussion_id_discussions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['discussion_events.id'], name=op.f('fk_discussion_comment_edits_event_id_discussion_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_discussion_comment_edits'))
    )
    op.create_index('ix_discussion_comment_edits_discussion_id', 'discussion_comment_edits', ['discussion_id'], unique=False)
    op.create_index('ix_discussion_comment_edits_event_id', 'discussion_comment_edits', ['event_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_discussion_comment_edits_event_id', table_name='discussion_comment_edits')
    op.drop_index('ix_discussion_comment_edits_discussion_id', table_name='discussion_comment_edits')
    op.drop_table('discussion_comment_edits')
    op.drop_index('ix_discussion_events_discussion_id_id', table_name='discussion_events')
    op.drop_table('discussion_events')
    with op.batch_alter_table('discussions') as batch:
        batch.drop_column('merge_commit')
        batch.drop_column('base_ref')
