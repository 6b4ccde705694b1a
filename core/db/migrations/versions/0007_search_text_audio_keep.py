"""history search folds every script; audio asked without a file type keeps the source's sound

Adds jobs.search_title and requests.search_url (titles and links case-folded in Python, since neither
database folds more than ASCII in SQL) and fills them for the rows already there.

Audio asked for without a file type used to be converted to the operator's MEDIABOT_AUDIO_FORMAT; it now
keeps the source's sound when that is MP3, AAC (m4a) or Opus. Finished audio jobs made the old way stop
answering such asks (they keep their files and links until retention), and Telegram's copies of them are
forgotten, so nobody gets a converted file where the sound would now be kept.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None
BATCH = 500


def _fold(text: str | None) -> str | None:
    """core.models.search_text as of this revision (a migration must not change with the code)."""
    if text is None:
        return None
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _backfill(table: str, source: str, target: str) -> None:
    bind = op.get_bind()
    rows = sa.table(table, sa.column("id", sa.String), sa.column(source, sa.Text), sa.column(target, sa.Text))
    last = ""
    while True:
        found = bind.execute(
            sa.select(rows.c.id, rows.c[source])
            .where(rows.c.id > last, rows.c[source].is_not(None))
            .order_by(rows.c.id)
            .limit(BATCH)
        ).all()
        if not found:
            return
        bind.execute(
            rows.update().where(rows.c.id == sa.bindparam("row_id")).values({target: sa.bindparam("folded")}),
            [{"row_id": row_id, "folded": _fold(text)} for row_id, text in found],
        )
        last = found[-1][0]


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_title", sa.Text(), nullable=True))
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_url", sa.Text(), nullable=True))
    _backfill("jobs", "title", "search_title")
    _backfill("requests", "url", "search_url")

    jobs = sa.table(
        "jobs",
        sa.column("kind", sa.String),
        sa.column("audio_format", sa.String),
        sa.column("status", sa.String),
        sa.column("dedup_key", sa.String),
        sa.column("media_key", sa.String),
    )
    op.execute(
        jobs.update()
        .where(jobs.c.kind == "audio", jobs.c.audio_format.is_(None), jobs.c.status == "done")
        .values(dedup_key=None, media_key=None)
    )
    cache = sa.table("delivery_cache", sa.column("variant_key", sa.String))
    op.execute(
        cache.delete().where(cache.c.variant_key.like("%|audio:%"), ~cache.c.variant_key.like("%|a=%"))
    )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("search_url")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("search_title")
