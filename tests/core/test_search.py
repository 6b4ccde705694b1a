"""History search finds titles and links in any script, in any case, on SQLite and on PostgreSQL: neither
database folds more than ASCII in SQL, so both sides are folded in Python (core.models.search_text), and the
rows made before that (migration 0007) are folded when migrating."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text

from core.bootstrap import Services
from core.db import migrate
from core.db.session import create_engine
from core.jobs.choices import SubmitRequest
from tests.support.services import make_settings, running_services

TITLES = ("Größe", "Ωμέγα", "Привет")
# (what a person types, the title it must find)
QUERIES = [
    ("GRÖSSE", "Größe"), ("größe", "Größe"), ("RÖß", "Größe"),
    ("ωμέγα", "Ωμέγα"), ("ΩΜΈΓΑ", "Ωμέγα"),
    ("привет", "Привет"), ("ПРИВЕТ", "Привет"),
]  # fmt: skip


def ask(url: str, user: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=user, kind="video")


async def found_titles(services: Services, user: str, query: str) -> list[str | None]:
    items, _ = await services.jobs.list_requests("cli", user, search=query, limit=50)
    return [job.title for _, job in items]


@pytest.mark.both_databases
async def test_history_search_folds_case_in_every_script(embedded: Services, media_site) -> None:
    user = f"u-{uuid.uuid4().hex[:6]}"
    for title in TITLES:
        url = media_site.url(f"/titled.html?title={quote(title)}&u={user}")
        submission = await embedded.jobs.submit(ask(url, user))
        final = await embedded.jobs.wait(submission.job.id, timeout=60)
        assert final.status == "done" and final.title == title, final.error
    for query, title in QUERIES:
        assert await found_titles(embedded, user, query) == [title], query
    assert await found_titles(embedded, user, "omega") == []
    # Links are folded the same way: a piece of the address in capitals finds all three.
    assert len(await found_titles(embedded, user, "TITLED.HTML")) == 3


@pytest.mark.both_databases
async def test_rows_made_before_the_search_columns_are_found_after_migrating(
    database_url: str, tmp_path: Path
) -> None:
    """0007 folds the titles and links already stored; and finished audio made the old way (converted to
    the operator's type when none was asked for) stops answering asks that now keep the source's sound."""
    await migrate.downgrade(database_url, "0006")
    now = datetime.now(UTC).replace(tzinfo=None) if database_url.startswith("sqlite") else datetime.now(UTC)
    engine = create_engine(database_url)
    jobs = [
        # (id, kind, title, dedup_key, audio_format)
        ("j-title", "video", "Größe", "https://ex.com/v|video:best", None),
        ("j-audio", "audio", "Song", "https://ex.com/s|audio:best", None),
        ("j-asked", "audio", "Song", "https://ex.com/s|audio:best|a=mp3", "mp3"),
    ]
    try:
        async with engine.begin() as conn:
            for job_id, kind, title, key, audio_format in jobs:
                await conn.execute(
                    text(
                        "INSERT INTO jobs (id, url, cache_key, kind, quality, dedup_key, media_key, status, "
                        "seq, retained, attempts, cancel_requested, title, audio_format, created_at, updated_at) "
                        "VALUES (:id, :url, :cache, :kind, 'best', :key, :mkey, 'done', 2, :yes, 0, :no, :title, "
                        ":audio_format, :now, :later)"
                    ),
                    dict(id=job_id, url="https://ex.com/Страница", cache="https://ex.com/Страница", kind=kind,
                         key=key, mkey=key, yes=True, no=False, title=title, audio_format=audio_format, now=now,
                         later=now),
                )  # fmt: skip
                await conn.execute(
                    text(
                        "INSERT INTO requests (id, job_id, source, user_id, url, kind, quality, target, status, "
                        "outcome, created_at) VALUES (:id, :job, 'cli', 'old', 'https://ex.com/Страница', "
                        ":kind, 'best', '{}', 'done', 'queued', :now)"
                    ),
                    dict(id=f"r-{job_id}", job=job_id, kind=kind, now=now),
                )
            await conn.execute(
                text(
                    "INSERT INTO delivery_cache (platform, variant_key, file_ref, file_type, created_at) VALUES "
                    "('telegram', 'https://ex.com/s|audio:best', 'f1', 'audio', :t1), "
                    "('telegram', 'https://ex.com/s|audio:best|a=mp3', 'f2', 'audio', :t2), "
                    "('telegram', 'https://ex.com/v|video:best', 'f3', 'video', :t3)"
                ),
                dict(t1=now, t2=now, t3=now),
            )
        settings = make_settings(tmp_path, database_url=database_url)
        async with running_services(settings, worker=False) as services:  # migrates to the head
            assert await found_titles(services, "old", "GRÖSSE") == ["Größe"]
            assert len(await found_titles(services, "old", "страница")) == 3
        async with engine.connect() as conn:
            keys = dict((await conn.execute(text("SELECT id, dedup_key FROM jobs"))).all())
            cached = {row[0] for row in await conn.execute(text("SELECT file_ref FROM delivery_cache"))}
        assert keys == {
            "j-title": "https://ex.com/v|video:best",
            "j-audio": None,
            "j-asked": "https://ex.com/s|audio:best|a=mp3",
        }
        assert cached == {"f2", "f3"}
    finally:
        await engine.dispose()


@pytest.mark.both_databases
@pytest.mark.parametrize("query", ["100%", "a_b", "back\\slash"])
async def test_search_wildcards_are_literal(embedded: Services, query: str) -> None:
    assert await found_titles(embedded, "nobody", query) == []
