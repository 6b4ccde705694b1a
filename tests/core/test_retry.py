"""A retry replaces the request it retries in its owner's history (SQLite and PostgreSQL), and never takes
away a file the new request (or anyone else) uses."""

from __future__ import annotations

import uuid

import pytest

from core.bootstrap import Services
from core.errors import NotFound
from core.jobs.choices import SubmitRequest


def ask(url: str, user: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=user)


async def listed(services: Services, user: str) -> list[str]:
    rows, _ = await services.jobs.list_requests("cli", user, limit=50)
    return [request.id for request, _ in rows]


@pytest.mark.both_databases
async def test_a_retried_failure_leaves_one_entry_the_new_one(embedded: Services, media_site) -> None:
    user = f"u-{uuid.uuid4().hex[:6]}"
    failed = await embedded.jobs.submit(ask(media_site.url(f"/missing.mp4?{uuid.uuid4().hex}"), user))
    assert (await embedded.jobs.wait(failed.job.id, timeout=60)).status == "failed"
    assert await listed(embedded, user) == [failed.request.id]

    # Someone else can't retry it, and their attempt changes nothing.
    with pytest.raises(NotFound):
        await embedded.jobs.retry(failed.request.id, source="cli", user_id="someone-else")
    assert await listed(embedded, user) == [failed.request.id]

    retried = await embedded.jobs.retry(failed.request.id, source="cli", user_id=user)
    assert retried.request.id != failed.request.id
    assert await listed(embedded, user) == [retried.request.id], "the failed entry is replaced, not kept"
    old, _ = await embedded.jobs.get_request(failed.request.id)
    assert old.hidden


@pytest.mark.both_databases
async def test_a_retry_answered_from_the_stored_file_keeps_that_file(embedded: Services, media_site) -> None:
    user = f"u-{uuid.uuid4().hex[:6]}"
    first = await embedded.jobs.submit(ask(media_site.url(f"/clip/retry-{uuid.uuid4().hex[:8]}.mp4"), user))
    assert (await embedded.jobs.wait(first.job.id, timeout=60)).status == "done"
    path = await embedded.jobs.local_path(first.job.id)
    assert path is not None and path.exists()

    retried = await embedded.jobs.retry(first.request.id, source="cli", user_id=user)
    assert retried.outcome == "cached" and retried.job.id == first.job.id
    assert await listed(embedded, user) == [retried.request.id]
    assert path.exists(), "the new request still uses the file"
    assert await embedded.jobs.link(first.job.id)
