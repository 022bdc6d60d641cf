"""Scan results of files (pickle imports, code-carrying layers, inconsistent headers)

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('file_scans',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('report', sa.Text(), nullable=True),
    sa.Column('rules', sa.String(length=128), nullable=True),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('oid', sa.String(length=40), nullable=True),
    sa.Column('xet_hash', sa.String(length=64), nullable=True),
    sa.Column('queued_at', sa.DateTime(), nullable=False),
    sa.Column('scanned_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_file_scans'))
    )
    op.create_index('ix_file_scans_status_lease_until', 'file_scans', ['status', 'lease_until'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_file_scans_status_lease_until', table_name='file_scans')
    op.drop_table('file_scans')
