"""Job runs (the refit pipeline's record) and job locks (its lease).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), server_default="running", nullable=False),
        sa.Column("stage", sa.String(32), nullable=True),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("candidate_teacher_id", sa.Integer(), nullable=True),
        sa.Column("candidate_student_id", sa.Integer(), nullable=True),
        sa.Column("active_student_id", sa.Integer(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed', 'skipped')", name="ck_job_runs_status"),
        sa.CheckConstraint(
            "decision IS NULL OR decision IN ('promoted', 'rejected', 'failed')", name="ck_job_runs_decision"
        ),
        sa.ForeignKeyConstraint(
            ["candidate_teacher_id"], ["model_versions.id"], name="fk_job_runs_candidate_teacher_id_model_versions"
        ),
        sa.ForeignKeyConstraint(
            ["candidate_student_id"], ["model_versions.id"], name="fk_job_runs_candidate_student_id_model_versions"
        ),
        sa.ForeignKeyConstraint(
            ["active_student_id"], ["model_versions.id"], name="fk_job_runs_active_student_id_model_versions"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
    )
    op.create_index("ix_job_runs_job_started_at", "job_runs", ["job", "started_at"])
    op.create_table(
        "job_locks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("renewed_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_job_locks"),
    )


def downgrade() -> None:
    op.drop_table("job_locks")
    op.drop_index("ix_job_runs_job_started_at", table_name="job_runs")
    op.drop_table("job_runs")
