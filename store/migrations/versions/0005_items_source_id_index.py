"""An index on items' source ids: the item feed numbers a record that names only its source id
by looking it up (``store.catalogue.numbered``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_source_id", "items", ["source_id"])


def downgrade() -> None:
    op.drop_index("ix_items_source_id", table_name="items")
