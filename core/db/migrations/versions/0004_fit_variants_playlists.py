"""fit variants, playlists

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
JOB_COLUMNS = (
    ("variant", sa.String(length=64)),
    ("source_job_id", sa.String(length=32)),
    ("fit_method", sa.String(length=16)),
    ("parts", sa.JSON()),
    ("entries", sa.JSON()),
    ("playlist_total", sa.Integer()),
    ("parent_id", sa.String(length=32)),
)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name, type_ in JOB_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.create_index(batch_op.f("ix_jobs_parent_id"), ["parent_id"], unique=False)
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_requests_parent_id"), ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requests_parent_id"))
        batch_op.drop_column("parent_id")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_parent_id"))
        for name, _ in reversed(JOB_COLUMNS):
            batch_op.drop_column(name)
