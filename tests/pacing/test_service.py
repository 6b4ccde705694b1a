"""Pacing through the whole service (issue 23, phase 2): jobs submitted as a front end does, run by the real
runner against the guarded site; embedded (in process) here, two `mediabot worker` processes on Redis in
test_workers.py."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from core.bootstrap import Services
from core.jobs.choices import SubmitRequest
from core.jobs.views import JobView
from core.pacing.report import pacing_report
from core.words import status_text
from tests.support.guarded_site import GuardedSite
from tests.support.media import MediaFiles
from tests.support.proxy import RecordingProxy
from tests.support.services import make_settings, running_services, wait_until


def ask(url: str, user: str | None = None) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=user or uuid.uuid4().hex[:8])


def account_file(cookies_dir: Path, site: GuardedSite, account: str) -> Path:
    path = cookies_dir / site.host / f"{account}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(site.cookie_text(account))
    path.chmod(0o600)
    return path


async def follow(services: Services, job_id: str, seen: list[JobView]) -> JobView:
    async for view in services.jobs.watch(job_id):
        seen.append(view)
    return seen[-1]


async def test_a_bot_check_rests_one_cookie_file_and_the_next_job_uses_the_other(
    guarded_site: GuardedSite, tmp_path: Path
) -> None:
    guarded_site.refusal = "bot"
    cookies = tmp_path / "cookies"
    for account in ("alice", "bob"):
        guarded_site.add_account(account)
        account_file(cookies, guarded_site, account)
    guarded_site.flag("alice")  # the site has had enough of alice
    settings = make_settings(tmp_path, cookies_dir=cookies, site_limits="*=1")
    async with running_services(settings) as services:
        for i in range(3):
            sub = await services.jobs.submit(ask(guarded_site.url(f"/members/{uuid.uuid4().hex}-{i}.mp4")))
            final = await services.jobs.wait(sub.job.id, timeout=60)
            assert final.status == "done", final.error
        refused = [hit.account for hit in guarded_site.hits if hit.refused]
        assert refused == ["alice"]  # refused once, then rested: never asked again
        assert {hit.account for hit in guarded_site.hits if hit.refused is None} == {"bob"}
        assert services.pacing is not None
        report = await pacing_report(services.pacing)
    site = next(s for s in report.pool.sites if s.site == "127.0.0.1")
    assert site.counts["bot_checks"] == 1 and site.counts["successes"] == 3
    (alice,) = [i for i in site.identities if i.identity.startswith("127.0.0.1/alice")]
    assert alice.resting_until is not None
    # What the site renewed during bob's downloads is in bob's file now.
    assert guarded_site.latest_token["bob"] in (cookies / "127.0.0.1" / "bob.txt").read_text()


async def test_every_identity_resting_makes_the_job_wait_then_fail_rate_limited(
    guarded_site: GuardedSite, tmp_path: Path
) -> None:
    guarded_site.budget_per_address = 0  # 429 to everything from us
    settings = make_settings(tmp_path, site_backoff_s=60, site_patience_s=2)
    async with running_services(settings) as services:
        sub = await services.jobs.submit(ask(guarded_site.url(f"/media/{uuid.uuid4().hex}.mp4")))
        seen: list[JobView] = []
        final = await asyncio.wait_for(follow(services, sub.job.id, seen), 30)
    assert final.status == "failed" and final.error is not None
    assert final.error.code == "rate_limited"
    assert final.error.message.startswith("127.0.0.1 is refusing our downloads for now; try again in about")
    waiting = [v for v in seen if v.status == "queued" and v.waiting_for]
    assert waiting and waiting[-1].waiting_for == "127.0.0.1" and waiting[-1].ahead is None
    assert "Waiting for 127.0.0.1: it is refusing downloads for now" in status_text(waiting[-1])
    # One refused request, then the identity rested: no busy loop against the site while waiting.
    assert len([hit for hit in guarded_site.hits if hit.refused]) == 1


async def test_a_logged_out_cookies_file_is_set_aside_and_named_in_the_log(
    guarded_site: GuardedSite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    cookies = tmp_path / "cookies"
    for account in ("alice", "bob"):
        guarded_site.add_account(account)
        account_file(cookies, guarded_site, account)
    guarded_site.expire_account("alice")
    settings = make_settings(tmp_path, cookies_dir=cookies)
    async with running_services(settings) as services:
        for _ in range(2):
            sub = await services.jobs.submit(ask(guarded_site.url(f"/members/{uuid.uuid4().hex}.mp4")))
            final = await services.jobs.wait(sub.job.id, timeout=60)
            assert final.status == "done", final.error
        assert services.pacing is not None
        report = await pacing_report(services.pacing)
    site = next(s for s in report.pool.sites if s.site == "127.0.0.1")
    assert site.set_aside == ("127.0.0.1/alice.txt",)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "cookies file 127.0.0.1/alice.txt set aside" in logged
    assert guarded_site.latest_token["alice"] not in logged and "session" not in logged


async def test_waiting_jobs_show_their_place_and_other_hosts_are_not_slowed(
    media_files: MediaFiles, tmp_path: Path
) -> None:
    limited = await GuardedSite(media_files, host="127.0.0.1").start()
    free = await GuardedSite(media_files, host="127.0.0.2").start()
    settings = make_settings(tmp_path, site_limits="127.0.0.1=1", worker_concurrency=3)
    try:
        async with running_services(settings) as services:
            held = [
                await services.jobs.submit(ask(limited.url(f"/media/h{i}-{uuid.uuid4().hex}.mp4?gate=g{i}")))
                for i in range(3)
            ]
            seen: list[JobView] = []
            watchers = [asyncio.ensure_future(follow(services, s.job.id, seen)) for s in held]
            await wait_until(lambda: limited.active, timeout=30)
            others = [
                await services.jobs.submit(ask(free.url(f"/media/o{i}-{uuid.uuid4().hex}.mp4")))
                for i in range(3)
            ]
            finals = await asyncio.gather(*(services.jobs.wait(s.job.id, timeout=30) for s in others))
            assert {f.status for f in finals} == {"done"}
            assert not any(w.done() for w in watchers)  # the limited host is still held by its gate
            places = {v.ahead for v in seen if v.status == "queued" and v.waiting_for == "127.0.0.1"}
            assert places & {0, 1}, seen
            assert "Waiting for 127.0.0.1: 1 ahead of you" in [
                status_text(v).split("\n")[1] for v in seen if v.ahead == 1
            ]
            for i in range(3):
                limited.open_gate(f"g{i}")
            done = await asyncio.wait_for(asyncio.gather(*watchers), 60)
            assert {v.status for v in done} == {"done"}
        assert limited.max_active == 1
    finally:
        await limited.stop()
        await free.stop()


async def test_a_cancelled_waiting_job_gives_up_its_place_at_once(
    media_files: MediaFiles, tmp_path: Path
) -> None:
    limited = await GuardedSite(media_files, host="127.0.0.1").start()
    settings = make_settings(tmp_path, site_limits="127.0.0.1=1")
    try:
        async with running_services(settings) as services:
            first = await services.jobs.submit(ask(limited.url(f"/media/{uuid.uuid4().hex}.mp4?gate=a")))
            await wait_until(lambda: limited.active, timeout=30)
            second = await services.jobs.submit(ask(limited.url(f"/media/{uuid.uuid4().hex}.mp4?gate=b")))
            assert services.pacing is not None
            pacer = services.pacing.pacer
            await wait_until(lambda: _waiting(pacer), timeout=10)
            await services.jobs.cancel(second.request.id)
            await wait_until(lambda: _waiting(pacer, 0), timeout=2)
            limited.open_gate("a")
            assert (await services.jobs.wait(first.job.id, timeout=30)).status == "done"
    finally:
        await limited.stop()


def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib bypasses any proxy for the hosts in NO_PROXY (the moto fixture puts loopback there)."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


async def _waiting(pacer: object, count: int | None = None) -> bool:
    slots = await pacer.slots("127.0.0.1")  # type: ignore[attr-defined]
    return slots.waiting > 0 if count is None else slots.waiting == count


async def test_proxies_carry_the_download_the_guard_checks_the_link_and_passwords_stay_out_of_logs(
    guarded_site: GuardedSite,
    recording_proxy: Callable[..., Awaitable[RecordingProxy]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    no_proxy_env(monkeypatch)
    secure = await recording_proxy(auth=("user", "s3cret-pw"), egress="127.0.0.2")
    dead = await recording_proxy(egress="127.0.0.3")
    await dead.refuse()
    port = guarded_site.base_url.rsplit(":", 1)[1]
    # Private links refused, except the site itself: the proxies on 127.0.0.1 are the operator's.
    settings = make_settings(
        tmp_path,
        allow_private_urls=False,
        allowed_private_hosts=[f"127.0.0.1:{port}"],
        proxies=f"{secure.url}|{dead.url}",
    )
    async with running_services(settings) as services:
        for _ in range(3):
            sub = await services.jobs.submit(ask(guarded_site.url(f"/media/{uuid.uuid4().hex}.mp4")))
            final = await services.jobs.wait(sub.job.id, timeout=60)
            assert final.status == "done", final.error
        assert services.pacing is not None
        report = await pacing_report(services.pacing)
    assert secure.targets("GET") and all(p.authorized for p in secure.passed)
    assert set(guarded_site.by_address) == {"127.0.0.2"}  # every download went through the live proxy
    assert list(report.pool.proxies_resting) == [dead.url]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "s3cret-pw" not in logged


async def test_the_guard_still_refuses_a_private_redirect_through_a_proxy(
    media_files: MediaFiles,
    media_site: object,
    recording_proxy: Callable[..., Awaitable[RecordingProxy]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The link's own host is allowed; it redirects to a private one, which the proxy would reach for us."""
    no_proxy_env(monkeypatch)
    proxy = await recording_proxy()
    async with GuardedSite(media_files, host="127.0.0.2") as private:
        settings = make_settings(
            tmp_path,
            allow_private_urls=False,
            allowed_private_hosts=[f"127.0.0.1:{media_site.port}"],  # type: ignore[attr-defined]
            proxies=proxy.url,
        )
        target = private.url(f"/media/{uuid.uuid4().hex}.mp4")
        async with running_services(settings) as services:
            link = media_site.url(f"/redirect?to={target}")  # type: ignore[attr-defined]
            sub = await services.jobs.submit(ask(link))
            final = await services.jobs.wait(sub.job.id, timeout=60)
    assert final.status == "failed" and final.error is not None
    assert final.error.code == "private_address", final.error
    assert proxy.targets("GET") and not private.hits
