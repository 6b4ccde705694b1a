"""inline mode per person (user_prefs.inline) and group chats' own settings (group_settings)

Revision ID: 0014
Revises: 0010 (the lead re-chains it after the other helpers' migrations)
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_prefs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("inline", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.create_table(
        "group_settings",
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("every_link", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "chat_id", name=op.f("pk_group_settings")),
    )


def downgrade() -> None:
    op.drop_table("group_settings")
    with op.batch_alter_table("user_prefs", schema=None) as batch_op:
        batch_op.drop_column("inline")
