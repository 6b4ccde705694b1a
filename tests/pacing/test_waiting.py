"""What waits for a site, and what does not (issue 23): a waiting job says so on a plain read (API, /status),
holds no worker slot another site's job could use, and a subscription's check obeys its site's budget and
backs off from a refusal like a download does, never counting it as a failure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bots.telegram.texts import status_list
from core.db.models import Job, Worker
from core.errors import MediabotError
from core.jobs.choices import SubmitRequest
from core.pacing.report import pacing_report
from core.subscriptions.service import SubscribeRequest
from tests.pacing.test_service import no_proxy_env
from tests.support.guarded_site import GuardedSite
from tests.support.media import MediaFiles
from tests.support.proxy import RecordingProxy
from tests.support.services import make_settings, running_services, wait_until
from tests.web.conftest import web_api, web_settings
from worker.subscriptions import PARALLEL

LIMITED = "127.0.0.1"


def ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=uuid.uuid4().hex[:8])


def follow(url: str) -> SubscribeRequest:
    return SubscribeRequest(text=url, source="cli", user_id="owner", place="chat:1")


def account_file(cookies_dir: Path, site: GuardedSite, account: str) -> None:
    path = cookies_dir / site.host / f"{account}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(site.cookie_text(account))
    path.chmod(0o600)


async def test_a_waiting_job_says_what_it_waits_for_on_a_plain_read(
    tmp_path: Path, media_files: MediaFiles
) -> None:
    limited = await GuardedSite(media_files, host=LIMITED).start()
    try:
        settings = web_settings(tmp_path, site_limits=f"{LIMITED}=1", worker_concurrency=2)
        async with web_api(settings) as api:
            ids = []
            for i in range(3):
                status, body = await api.submit(limited.url(f"/media/w{i}-{uuid.uuid4().hex}.mp4?gate=g{i}"))
                assert status == 202, body
                ids.append(body["id"])
                if i == 0:
                    await wait_until(lambda: limited.active, timeout=30)

            async def places() -> dict[str, Any] | None:
                bodies = [await api.job(i) for i in ids[1:]]
                got = {(b["status"], b["waiting_for"], b["ahead"]) for b in bodies}
                return {"bodies": bodies} if got == {("queued", LIMITED, 0), ("queued", LIMITED, 1)} else None

            # Read from the database (GET /api/v1/jobs/{id}), not from the live events.
            await wait_until(places, timeout=30)
            running = await api.job(ids[0])
            assert running["status"] == "running" and running["waiting_for"] is None
            status, listed, _ = await api.call("GET", "/api/v1/jobs")
            assert status == 200
            assert {(j["waiting_for"], j["ahead"]) for j in listed["items"] if j["id"] in ids[1:]} == {
                (LIMITED, 0),
                (LIMITED, 1),
            }
            # A chat's /status reads the same rows.
            pairs = [await api.services.jobs.get_request(i) for i in ids]
            text = status_list([(request.id, view) for request, view in pairs])
            assert f"Waiting for {LIMITED}: you are next" in text
            assert f"Waiting for {LIMITED}: 1 ahead of you" in text
            for i in range(3):
                limited.open_gate(f"g{i}")
            for job_id in ids:
                done = await api.wait_status(job_id, "done", "failed", timeout=60)
                assert done["status"] == "done" and done["waiting_for"] is None and done["ahead"] is None
            async with api.services.sessions() as session:
                rows = (await session.execute(select(Job.waiting_for, Job.waiting_ahead))).all()
            assert all(row == (None, None) for row in rows)  # cleared by the claim
        assert limited.max_active == 1
    finally:
        await limited.stop()


async def test_a_waiting_job_leaves_its_worker_slot_to_another_sites_job(
    tmp_path: Path, pg_url: str, redis_url: str, media_files: MediaFiles, worker_processes: Any
) -> None:
    """Two `mediabot worker` processes of one slot each: one holds host A's only slot with a long download,
    the other gets a job for A that must wait, then a job for host B, which runs at once."""
    limited = await GuardedSite(media_files, host=LIMITED).start()
    free = await GuardedSite(media_files, host="127.0.0.2").start()
    settings = make_settings(
        tmp_path, database_url=pg_url, redis_url=redis_url, site_limits=f"{LIMITED}=1", worker_concurrency=1
    )
    try:
        async with running_services(settings, worker=False) as services:
            procs = [worker_processes(settings), worker_processes(settings)]

            async def two_workers() -> bool:
                async with services.sessions() as session:
                    return len(list(await session.scalars(select(Worker)))) == 2

            await wait_until(two_workers, timeout=60)
            long = await services.jobs.submit(
                ask(limited.url(f"/media/long-{uuid.uuid4().hex}.mp4?gate=long"))
            )
            await wait_until(lambda: limited.active, timeout=30)
            waiting = await services.jobs.submit(ask(limited.url(f"/media/next-{uuid.uuid4().hex}.mp4")))

            async def waits() -> bool:
                view = await services.jobs.get_job(waiting.job.id)
                return view.status == "queued" and view.waiting_for == LIMITED and view.ahead == 0

            await wait_until(waits, timeout=30)
            other = await services.jobs.submit(ask(free.url(f"/media/other-{uuid.uuid4().hex}.mp4")))
            # Host A's download is still held open: B's job is done while A's waiting job still waits.
            final = await services.jobs.wait(other.job.id, timeout=30)
            assert final.status == "done", [p.output()[-2000:] for p in procs]
            assert (await services.jobs.get_job(waiting.job.id)).status == "queued"
            assert (await services.jobs.get_job(long.job.id)).status == "running"
            limited.open_gate("long")
            for sub in (long, waiting):
                assert (await services.jobs.wait(sub.job.id, timeout=60)).status == "done"
        assert limited.max_active == 1
    finally:
        await limited.stop()
        await free.stop()


async def test_a_subscription_check_waits_for_its_sites_slot_and_holds_no_place_of_other_sites(
    media_files: MediaFiles, tmp_path: Path
) -> None:
    limited = await GuardedSite(media_files, host=LIMITED).start()
    free = await GuardedSite(media_files, host="127.0.0.2").start()
    settings = make_settings(tmp_path, site_limits=f"{LIMITED}=1", subscription_interval_s=0.2)
    try:
        async with running_services(settings) as services:
            subs = services.subscriptions
            held = await services.jobs.submit(ask(limited.url(f"/media/{uuid.uuid4().hex}.mp4?gate=hold")))
            await wait_until(lambda: limited.active, timeout=30)
            # More waiting checks than a worker lists at once (worker.subscriptions.PARALLEL)...
            waiting = [
                (await subs.subscribe(follow(limited.channel(f"ch{i}-{uuid.uuid4().hex[:6]}", 2))))[0]
                for i in range(PARALLEL + 1)
            ]
            other, _ = await subs.subscribe(follow(free.channel(f"free-{uuid.uuid4().hex[:6]}", 2)))

            async def checked(sub_id: str) -> bool:
                return (await subs.get(sub_id, source="cli", user_id="owner")).checks >= 1

            # ... and a channel of another site is listed meanwhile.
            await wait_until(lambda: checked(other.id), timeout=30)
            await asyncio.sleep(1.0)  # several rounds of checks are due meanwhile
            assert not [h for h in limited.hits if h.path.startswith("/channel/")]  # none listed its feed
            for sub in waiting:
                view = await subs.get(sub.id, source="cli", user_id="owner")
                assert view.checks == 0 and view.failures == 0
            limited.open_gate("hold")
            assert (await services.jobs.wait(held.job.id, timeout=60)).status == "done"
            for sub in waiting:
                await wait_until(lambda sub_id=sub.id: checked(sub_id), timeout=30)
        assert limited.max_active == 1
    finally:
        await limited.stop()
        await free.stop()


async def test_a_refused_check_rests_the_identity_and_is_no_failure(
    guarded_site: GuardedSite, tmp_path: Path
) -> None:
    cookies = tmp_path / "cookies"
    for account in ("alice", "bob"):
        guarded_site.add_account(account)
        account_file(cookies, guarded_site, account)
    guarded_site.flag("alice")  # the site answers alice with 429
    settings = make_settings(
        tmp_path,
        cookies_dir=cookies,
        subscription_interval_s=0.2,
        subscription_max_failures=1,  # a refusal counted as a failure would pause it at once
        site_backoff_s=600,
    )
    async with running_services(settings) as services:
        feed = guarded_site.channel(f"ch-{uuid.uuid4().hex[:6]}", 2)
        sub, _ = await services.subscriptions.subscribe(follow(feed))

        async def checked_thrice() -> bool:
            return (await services.subscriptions.get(sub.id, source="cli", user_id="owner")).checks >= 3

        await wait_until(checked_thrice, timeout=30)
        view = await services.subscriptions.get(sub.id, source="cli", user_id="owner")
        assert not view.paused and view.failures == 0 and view.last_error is None
        listings = guarded_site.hits  # listings only: nothing is downloaded (no backfill, no new entry)
        assert listings and all(h.path.startswith("/channel/") for h in listings)
        # alice was asked once, refused, and rests: every other listing went as bob.
        assert [h.account for h in listings if h.refused] == ["alice"]
        assert {h.account for h in listings if not h.refused} == {"bob"}
        assert services.pacing is not None
        report = await pacing_report(services.pacing)
    site = next(s for s in report.pool.sites if s.site == guarded_site.host)
    assert site.counts["rate_limits"] == 1
    (alice,) = [i for i in site.identities if i.identity.startswith(f"{guarded_site.host}/alice")]
    assert alice.resting_until is not None


async def test_a_check_whose_site_refuses_everyone_waits_without_asking_again(
    guarded_site: GuardedSite, tmp_path: Path
) -> None:
    guarded_site.budget_per_address = 0  # 429 to everything from us
    settings = make_settings(
        tmp_path, subscription_interval_s=0.2, subscription_max_failures=1, site_backoff_s=600
    )
    async with running_services(settings) as services:
        feed = guarded_site.channel(f"ch-{uuid.uuid4().hex[:6]}", 2)
        sub, _ = await services.subscriptions.subscribe(follow(feed))
        await wait_until(lambda: [h for h in guarded_site.hits if h.refused], timeout=30)
        await asyncio.sleep(1.0)  # five intervals: the checks due meanwhile are put off, not sent
        assert len([h for h in guarded_site.hits if h.refused]) == 1
        view = await services.subscriptions.get(sub.id, source="cli", user_id="owner")
        assert not view.paused and view.failures == 0 and view.checks == 0


async def test_a_probe_goes_as_the_next_identity_and_a_refusal_rests_it(
    guarded_site: GuardedSite, tmp_path: Path
) -> None:
    cookies = tmp_path / "cookies"
    for account in ("alice", "bob"):
        guarded_site.add_account(account)
        account_file(cookies, guarded_site, account)
    guarded_site.flag("alice")
    settings = make_settings(tmp_path, cookies_dir=cookies, site_backoff_s=600)
    async with running_services(settings) as services:
        for i in range(3):
            offered = await services.jobs.formats(guarded_site.url(f"/page/p{i}-{uuid.uuid4().hex[:6]}.html"))
            assert offered.formats
    assert [h.account for h in guarded_site.hits if h.refused] == ["alice"]  # once, then it rests
    assert {h.account for h in guarded_site.hits if not h.refused} == {"bob"}


async def test_a_probe_of_a_site_refusing_everyone_says_when_to_try_again(
    guarded_site: GuardedSite, tmp_path: Path
) -> None:
    guarded_site.budget_per_address = 0
    settings = make_settings(tmp_path, site_backoff_s=600)
    async with running_services(settings) as services:
        for i in range(2):
            with pytest.raises(MediabotError) as refused:
                await services.jobs.formats(guarded_site.url(f"/page/r{i}-{uuid.uuid4().hex[:6]}.html"))
            assert refused.value.code == "rate_limited"
            assert refused.value.message.startswith(f"{guarded_site.host} is refusing our downloads for now")
    assert len([h for h in guarded_site.hits if h.refused]) == 1  # the second probe did not ask the site


async def test_a_copy_that_fits_fetches_its_smaller_format_as_the_sites_identity(
    media_site: Any,
    recording_proxy: Callable[..., Awaitable[RecordingProxy]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A copy made to fit a chat fetches a smaller format from the site: through the proxy pool, as a
    download does, never around it."""
    no_proxy_env(monkeypatch)
    proxy = await recording_proxy()
    settings = make_settings(tmp_path, proxies=proxy.url)
    async with running_services(settings) as services:
        sub = await services.jobs.submit(ask(media_site.url(f"/qualities.html?v={uuid.uuid4().hex[:6]}")))
        full = await services.jobs.wait(sub.job.id, timeout=90)
        assert full.status == "done", full.error
        before = len(proxy.targets("GET"))
        fit = await services.jobs.fit(sub.request.id, 1_000_000)
        copy = await services.jobs.wait(fit.job.id, timeout=120)
    assert copy.status == "done" and copy.fit_method == "smaller_format", copy.error
    fetched = proxy.targets("GET")[before:]
    assert any(target.endswith("/video.mp4") for target in fetched), fetched
