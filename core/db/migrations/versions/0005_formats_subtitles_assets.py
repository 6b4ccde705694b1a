"""formats, subtitles, thumbnails and other assets, history removal, format and subtitle preferences

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
JOB_COLUMNS = (
    ("format_id", sa.String(length=128)),
    ("subtitle_langs", sa.JSON()),
    ("subtitles_missing", sa.JSON()),
    ("upload_date", sa.String(length=8)),
    ("assets", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name, type_ in JOB_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hidden_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("user_prefs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ask_format", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("subtitles", sa.String(length=64), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("user_prefs", schema=None) as batch_op:
        batch_op.drop_column("subtitles")
        batch_op.drop_column("ask_format")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("hidden_at")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for name, _ in reversed(JOB_COLUMNS):
            batch_op.drop_column(name)
