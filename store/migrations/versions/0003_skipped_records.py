"""Skipped records: undecodable record batches the consumer dead-lettered and went past.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "skipped_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("first_offset", sa.BigInteger(), nullable=False),
        sa.Column("last_offset", sa.BigInteger(), nullable=False),
        sa.Column("fingerprint", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_skipped_records"),
    )
    op.create_index(
        "ix_skipped_records_topic",
        "skipped_records",
        ["topic", "partition", "first_offset", "fingerprint"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("ix_skipped_records_topic", table_name="skipped_records")
    op.drop_table("skipped_records")
