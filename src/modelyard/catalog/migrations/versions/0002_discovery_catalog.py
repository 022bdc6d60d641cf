"""discovery catalog

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('catalog_counter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalog_counter'))
    )
    op.create_table('download_days',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_download_days_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'day', name=op.f('pk_download_days'))
    )
    op.create_table('eval_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('task_type', sa.String(length=128), nullable=False),
    sa.Column('dataset_type', sa.String(length=256), nullable=False),
    sa.Column('dataset_name', sa.String(length=256), nullable=True),
    sa.Column('dataset_config', sa.String(length=256), nullable=True),
    sa.Column('dataset_split', sa.String(length=128), nullable=True),
    sa.Column('metric_type', sa.String(length=128), nullable=False),
    sa.Column('metric_name', sa.String(length=256), nullable=True),
    sa.Column('metric_value', sa.Float(), nullable=False),
    sa.Column('verified', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_eval_results_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_eval_results'))
    )
    with op.batch_alter_table('eval_results', schema=None) as batch_op:
        batch_op.create_index('ix_eval_results_board', ['task_type', 'dataset_type', 'metric_type', 'metric_value'], unique=False)
        batch_op.create_index('ix_eval_results_repo_id', ['repo_id'], unique=False)

    op.create_table('likes',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_likes_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_likes_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'repo_id', name=op.f('pk_likes'))
    )
    with op.batch_alter_table('likes', schema=None) as batch_op:
        batch_op.create_index('ix_likes_repo_id', ['repo_id'], unique=False)

    op.create_table('repo_relations',
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('base_key', sa.String(length=200), nullable=False),
    sa.Column('base_id', sa.String(length=200), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_repo_relations_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('repo_id', 'base_key', name=op.f('pk_repo_relations'))
    )
    with op.batch_alter_table('repo_relations', schema=None) as batch_op:
        batch_op.create_index('ix_repo_relations_base_key', ['base_key'], unique=False)

    op.create_table('repo_sort_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('repo_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('last_modified', sa.DateTime(), nullable=False),
    sa.Column('downloads', sa.BigInteger(), nullable=False),
    sa.Column('likes', sa.Integer(), nullable=False),
    sa.Column('trending_score', sa.Float(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['repo_id'], ['repos.id'], name=op.f('fk_repo_sort_log_repo_id_repos'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_repo_sort_log'))
    )
    with op.batch_alter_table('repo_sort_log', schema=None) as batch_op:
        batch_op.create_index('ix_repo_sort_log_repo_id_seq', ['repo_id', 'seq'], unique=False)
        batch_op.create_index('ix_repo_sort_log_at', ['at'], unique=False)

    with op.batch_alter_table('repos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('num_parameters', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('safetensors', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('gguf', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('config', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('transformers_info', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('card_errors', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('indexed_commit', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('created_seq', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('change_seq', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.create_index('ix_repos_type_created_at', ['type', 'created_at'], unique=False)
        batch_op.create_index('ix_repos_type_downloads', ['type', 'downloads'], unique=False)
        batch_op.create_index('ix_repos_type_likes', ['type', 'likes'], unique=False)
        batch_op.create_index('ix_repos_type_trending_score', ['type', 'trending_score'], unique=False)
        batch_op.create_index('ix_repos_change_seq', ['change_seq'], unique=False)

    op.execute("INSERT INTO catalog_counter (id, value) VALUES (1, 0)")
    # Full-text search: not expressible in the portable metadata (see catalog/search.py).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE repo_fts USING fts5(name, body, tokenize='unicode61 remove_diacritics 2')"
        )
    else:
        op.execute("ALTER TABLE repos ADD COLUMN search_vector tsvector")
        op.execute("CREATE INDEX ix_repos_search_vector ON repos USING GIN (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE repo_fts")
    else:
        op.execute("DROP INDEX ix_repos_search_vector")
        op.execute("ALTER TABLE repos DROP COLUMN search_vector")
    with op.batch_alter_table('repos', schema=None) as batch_op:
        batch_op.drop_index('ix_repos_change_seq')
        batch_op.drop_index('ix_repos_type_trending_score')
        batch_op.drop_index('ix_repos_type_likes')
        batch_op.drop_index('ix_repos_type_downloads')
        batch_op.drop_index('ix_repos_type_created_at')
        batch_op.drop_column('change_seq')
        batch_op.drop_column('created_seq')
        batch_op.drop_column('indexed_commit')
        batch_op.drop_column('card_errors')
        batch_op.drop_column('transformers_info')
        batch_op.drop_column('config')
        batch_op.drop_column('gguf')
        batch_op.drop_column('safetensors')
        batch_op.drop_column('num_parameters')

    with op.batch_alter_table('repo_sort_log', schema=None) as batch_op:
        batch_op.drop_index('ix_repo_sort_log_at')
        batch_op.drop_index('ix_repo_sort_log_repo_id_seq')

    op.drop_table('repo_sort_log')
    with op.batch_alter_table('repo_relations', schema=None) as batch_op:
        batch_op.drop_index('ix_repo_relations_base_key')

    op.drop_table('repo_relations')
    with op.batch_alter_table('likes', schema=None) as batch_op:
        batch_op.drop_index('ix_likes_repo_id')

    op.drop_table('likes')
    with op.batch_alter_table('eval_results', schema=None) as batch_op:
        batch_op.drop_index('ix_eval_results_repo_id')
        batch_op.drop_index('ix_eval_results_board')

    op.drop_table('eval_results')
    op.drop_table('download_days')
    op.drop_table('catalog_counter')
