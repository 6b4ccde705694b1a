"""The operator's controls in the core: bans refuse submissions from any front end, quotas, the figures
and the queue view, on SQLite and PostgreSQL (real job service and worker, the local media site)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from core.admin import texts
from core.admin.service import Banned, CannotBan
from core.bootstrap import Services
from core.config import SettingsError
from core.errors import InvalidRequest, NotFound
from core.jobs.choices import SubmitRequest
from core.jobs.views import JobView
from tests.support.media_site import MediaSite
from tests.support.services import make_settings, running_services

pytestmark = [pytest.mark.timeout(60), pytest.mark.both_databases]


def ask(url: str, user: str = "1001", source: str = "telegram", kind: str = "video") -> SubmitRequest:
    return SubmitRequest(text=url, source=source, user_id=user, kind=kind)  # type: ignore[arg-type]


def clip(site: MediaSite) -> str:
    return site.url(f"/clip/{uuid.uuid4().hex[:12]}.mp4")


async def finished(services: Services, job_id: str) -> JobView:
    async for view in services.jobs.watch(job_id):
        last = view
    return last


async def test_a_ban_refuses_every_submission_with_one_sentence_and_unban_lifts_it(
    embedded: Services, media_site: MediaSite
) -> None:
    admin = embedded.admin
    first = await embedded.jobs.submit(ask(clip(media_site)))
    assert (await finished(embedded, first.job.id)).status == "done"

    await admin.ban(
        "telegram", "1001", reason="  sending   spam ", by="telegram:42", by_user=("telegram", "42")
    )
    with pytest.raises(Banned) as refused:
        await embedded.jobs.submit(ask(clip(media_site)))
    assert refused.value.message == "You can't use this bot. Reason: sending spam"
    assert await admin.banned("telegram", "1001") == refused.value.message
    # Only that person on that front end: the same id elsewhere and others still get through.
    assert (await embedded.jobs.submit(ask(clip(media_site), source="discord"))).outcome == "queued"
    assert (await embedded.jobs.submit(ask(clip(media_site), user="1002"))).outcome == "queued"
    with pytest.raises(Banned):
        await admin.admit("telegram", "1001")
    assert [(b.source, b.user_id, b.reason, b.banned_by) for b in await admin.bans()] == [
        ("telegram", "1001", "sending spam", "telegram:42")
    ]

    await admin.unban("telegram", "1001", by="telegram:42")
    assert await admin.banned("telegram", "1001") is None
    assert (await embedded.jobs.submit(ask(clip(media_site)))).outcome == "queued"
    with pytest.raises(NotFound) as again:
        await admin.unban("telegram", "1001", by="telegram:42")
    assert again.value.message == texts.NOT_BANNED


async def test_bad_bans_get_one_sentence(tmp_path: Path, database_url: str, media_site: MediaSite) -> None:
    settings = make_settings(tmp_path, database_url=database_url, telegram_admins="42,43")
    async with running_services(settings, worker=False) as services:
        admin = services.admin
        await services.jobs.submit(ask(clip(media_site), user="42"))
        cases = [
            (("telegram", "42"), texts.BAN_SELF),
            (("telegram", "43"), texts.BAN_OPERATOR),
            (("telegram", "555"), texts.UNKNOWN_USER),
            (("matrix", "1"), texts.BAD_SOURCE),
            (("telegram", "a b"), texts.BAD_USER_ID),
        ]
        for (source, user), sentence in cases:
            with pytest.raises((InvalidRequest, NotFound, CannotBan)) as refused:
                await admin.ban(source, user, reason=None, by="telegram:42", by_user=("telegram", "42"))
            assert refused.value.message == sentence
        await services.jobs.submit(ask(clip(media_site), user="7"))
        with pytest.raises(InvalidRequest) as long_reason:
            await admin.ban("telegram", "7", reason="x" * 201, by="telegram:42")
        assert long_reason.value.message == texts.REASON_TOO_LONG
        assert await admin.bans() == []


async def test_a_quota_override_replaces_the_default_for_that_person(
    tmp_path: Path, database_url: str, media_site: MediaSite
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, user_requests_per_hour=3)
    async with running_services(settings, worker=False) as services:
        admin = services.admin
        await services.jobs.submit(ask(clip(media_site), user="1001"))
        assert (await admin.admit("telegram", "1001")).requests_per_hour == 3
        quota = await admin.set_quota("telegram", "1001", 50, by="telegram:42")
        assert (quota.requests_per_hour, quota.overridden) == (50, True)
        assert (await admin.admit("telegram", "1001")).requests_per_hour == 50
        assert (await admin.admit("telegram", "1002")).requests_per_hour == 3
        for bad in (0, -1, 100_001):
            with pytest.raises(InvalidRequest) as refused:
                await admin.set_quota("telegram", "1001", bad, by="telegram:42")
            assert refused.value.message == texts.BAD_LIMIT
        with pytest.raises(NotFound):
            await admin.set_quota("telegram", "999", 5, by="telegram:42")
        back = await admin.set_quota("telegram", "1001", None, by="telegram:42")
        assert (back.requests_per_hour, back.overridden) == (3, False)
        assert (await admin.admit("telegram", "1001")).requests_per_hour == 3


async def test_stats_count_what_happened(embedded: Services, media_site: MediaSite) -> None:
    one = clip(media_site)
    first = await embedded.jobs.submit(ask(one, user="1001"))
    done_first = await finished(embedded, first.job.id)
    again = await embedded.jobs.submit(ask(one, user="1002"))  # the stored file: a cache hit
    assert again.outcome == "cached"
    second = await embedded.jobs.submit(ask(clip(media_site), user="1001", source="discord"))
    done_second = await finished(embedded, second.job.id)
    failed = await embedded.jobs.submit(ask(media_site.url(f"/missing.mp4?t={uuid.uuid4().hex[:6]}")))
    ended = await finished(embedded, failed.job.id)
    assert (done_first.status, done_second.status, ended.status) == ("done", "done", "failed")
    assert ended.error is not None

    today, week = await embedded.admin.stats()
    for period in (today, week):
        assert period.requests == 4
        assert period.cache_hits == 1
        assert period.downloads == 2
        assert period.bytes == (done_first.filesize or 0) + (done_second.filesize or 0) > 0
        assert period.failures == {ended.error.code: 1}
        assert [(s.site, s.requests) for s in period.top_sites] == [("127.0.0.1", 4)]
        assert [(u.source, u.user_id, u.requests) for u in period.busiest_users] == [
            ("telegram", "1001", 2), ("discord", "1001", 1), ("telegram", "1002", 1)
        ]  # fmt: skip
    text = texts.stats_text([today, week])
    assert "Requests: 4" in text and "Cache hits: 1" in text and "Top sites: 127.0.0.1 4" in text


async def test_the_queue_shows_what_waits_by_site(
    tmp_path: Path, database_url: str, media_site: MediaSite
) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    async with running_services(settings, worker=False) as services:
        assert texts.queue_text(await services.admin.queue()) == "Nothing is running or waiting."
        for user in ("1", "2", "3"):
            await services.jobs.submit(ask(clip(media_site), user=user))
        view = await services.admin.queue()
        assert [(s.site, s.running, s.queued) for s in view.sites] == [("127.0.0.1", 0, 3)]
        assert len(view.jobs) == 3 and all(j.status == "queued" and j.requests == 1 for j in view.jobs)
        assert texts.queue_text(view).startswith("127.0.0.1: 0 running, 3 waiting")


def test_operators_are_numeric_ids(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, telegram_admins=" 42, 43 ", discord_admins="1017")
    assert (settings.telegram_admins, settings.discord_admins) == (["42", "43"], ["1017"])
    with pytest.raises(SettingsError) as bad:
        make_settings(tmp_path, telegram_admins="@alice")
    assert "MEDIABOT_TELEGRAM_ADMINS" in str(bad.value) and "numeric" in str(bad.value)
