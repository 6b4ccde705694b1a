"""The pacing parts around real yt-dlp downloads from the guarded site, as the runner will put them together
(phase 2): a slot per site, an identity per attempt, the site's refusal read by classify, cookies written
back. Two hosts on loopback (127.0.0.1 and 127.0.0.2) are two sites."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import yt_dlp
from yt_dlp.utils import DownloadError

from core.media.sites import site_of_url
from core.pacing import (
    Backoff,
    Granted,
    Identity,
    IdentityPool,
    MemoryIdentityStore,
    Pacer,
    Resting,
    SlotTimings,
    checkout,
    classify,
    parse_proxies,
    parse_site_limits,
    write_back,
)
from core.pacing.identities import IdentityStore
from tests.support.guarded_site import GuardedSite
from tests.support.media import MediaFiles
from tests.support.proxy import RecordingProxy

from .conftest import PacerFactory

TIMINGS = SlotTimings(lease_s=30, wait_ttl_s=30, poll_s=0.05)


def fetch(url: str, identity: Identity) -> str | None:
    """One download attempt with the identity (in a thread, as the worker does): None, or yt-dlp's error."""
    workdir = Path(tempfile.mkdtemp(prefix="pacing-"))
    copy = checkout(identity.cookies.path, workdir) if identity.cookies else None
    options = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "retries": 0,
        "outtmpl": str(workdir / "%(id)s.%(ext)s"),
        "cookiefile": str(copy.copy) if copy else None,
        "proxy": identity.proxy.url if identity.proxy else "",
    }
    try:
        with yt_dlp.YoutubeDL(options) as ydl:
            ydl.extract_info(url)
    except DownloadError as exc:
        return str(exc)
    else:
        if copy is not None:
            write_back(copy)
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Job:
    url: str
    job_id: str
    attempts: int = 0
    identities: list[str] | None = None


async def run_job(pacer: Pacer, pool: IdentityPool, job: Job, patience_s: float = 30) -> None:
    """What the runner will do: wait for the site's slot, then try identities until one works."""
    site = await asyncio.to_thread(site_of_url, job.url)
    job.identities = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    while not isinstance(slot := await pacer.try_acquire(site, job.job_id), Granted):
        assert loop.time() < deadline, "waited too long for a slot"
        await asyncio.sleep(slot.retry_after)
    try:
        while True:
            identity = await pool.choose(site, job.url)
            if isinstance(identity, Resting):
                assert loop.time() + identity.retry_after < deadline, "every identity rests"
                await asyncio.sleep(identity.retry_after)
                continue
            job.attempts += 1
            job.identities.append(identity.name)
            error = await asyncio.to_thread(fetch, job.url, identity)
            if error is None:
                await pool.succeeded(identity)
                return
            outcome = classify(error)
            assert outcome is not None, error
            await pool.report(identity, outcome)
    finally:
        await pacer.release(site, job.job_id)


def account_file(cookies_dir: Path, site: GuardedSite, account: str) -> Path:
    path = cookies_dir / site.host / f"{account}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(site.cookie_text(account))
    path.chmod(0o600)
    return path


async def test_a_bot_check_rests_one_cookie_file_and_the_next_try_uses_the_other(
    guarded_site: GuardedSite,
    make_pacer: PacerFactory,
    make_store: Callable[[], Awaitable[IdentityStore]],
    tmp_path: Path,
) -> None:
    guarded_site.refusal = "bot"
    for account in ("alice", "bob"):
        guarded_site.add_account(account)
        account_file(tmp_path, guarded_site, account)
    guarded_site.flag("alice")  # the site has had enough of alice
    pacer = await make_pacer(parse_site_limits("*=1"), TIMINGS)
    pool = IdentityPool(await make_store(), cookies_dir=tmp_path, proxies=parse_proxies(""))
    jobs = [Job(guarded_site.url(f"/members/{i}.mp4"), f"job{i}") for i in range(4)]
    for job in jobs:
        await run_job(pacer, pool, job)
    refused = [hit.account for hit in guarded_site.hits if hit.refused]
    assert refused == ["alice"]  # refused once, then rested: never asked again
    assert guarded_site.by_account["bob"] == 8  # yt-dlp reads the link twice per download
    assert sum(job.attempts for job in jobs) == 5
    site = next(s for s in (await pool.stats()).sites if s.site == "127.0.0.1")
    assert site.counts["bot_checks"] == 1 and site.counts["successes"] == 4
    alice = next(i for i in site.identities if i.identity.startswith("127.0.0.1/alice"))
    assert alice.resting_until is not None


async def test_a_limit_of_one_never_overlaps_and_other_hosts_run_meanwhile(
    media_files: MediaFiles, make_pacer: PacerFactory
) -> None:
    limited = await GuardedSite(media_files, host="127.0.0.1").start()
    free = await GuardedSite(media_files, host="127.0.0.2").start()
    try:
        pacer = await make_pacer(parse_site_limits("127.0.0.1=1"), TIMINGS)
        pool = IdentityPool(MemoryIdentityStore(), cookies_dir=None, proxies=parse_proxies(""))
        held = [Job(limited.url(f"/media/h{i}.mp4?gate=g{i}"), f"held{i}") for i in range(3)]
        running = [asyncio.ensure_future(run_job(pacer, pool, job)) for job in held]
        for _ in range(300):  # the first held job reaches the site (its yt-dlp starting in a thread)
            if limited.active:
                break
            await asyncio.sleep(0.05)
        others = [Job(free.url(f"/media/o{i}.mp4"), f"other{i}") for i in range(4)]
        await asyncio.wait_for(asyncio.gather(*(run_job(pacer, pool, job) for job in others)), 30)
        assert all(not task.done() for task in running)  # the limited host is still held by its gate
        assert len({hit.path for hit in limited.hits}) == 1  # and the other two jobs wait for its slot
        for i in range(3):
            limited.open_gate(f"g{i}")
        await asyncio.wait_for(asyncio.gather(*running), 60)
        assert limited.max_active == 1
        assert len([hit for hit in limited.hits if hit.refused is None]) == 6
    finally:
        await limited.stop()
        await free.stop()


async def test_proxies_carry_the_download_and_a_dead_one_rests(
    guarded_site: GuardedSite,
    recording_proxy: Callable[..., Awaitable[RecordingProxy]],
    make_pacer: PacerFactory,
) -> None:
    first = await recording_proxy(auth=("user", "s3cret"), egress="127.0.0.2")
    second = await recording_proxy(egress="127.0.0.3")
    pacer = await make_pacer(parse_site_limits(""), TIMINGS)
    pool = IdentityPool(
        MemoryIdentityStore(),
        cookies_dir=None,
        proxies=parse_proxies(f"{first.url}|{second.url}"),
        backoff=Backoff(base_s=60),
    )
    await run_job(pacer, pool, Job(guarded_site.url("/media/a.mp4"), "a"))
    await run_job(pacer, pool, Job(guarded_site.url("/media/b.mp4"), "b"))
    assert all(p.authorized for p in first.passed) and first.targets("GET")
    assert second.targets("GET") and set(guarded_site.by_address) == {"127.0.0.2", "127.0.0.3"}
    await first.refuse()  # the proxy's machine is gone
    jobs = [Job(guarded_site.url(f"/media/c{i}.mp4"), f"c{i}") for i in range(3)]
    for job in jobs:
        await run_job(pacer, pool, job)
    assert sum(job.attempts for job in jobs) <= 4  # at most one attempt through the dead proxy
    assert list((await pool.stats()).proxies_resting) == [first.url.replace("s3cret", "***")]
    assert all("s3cret" not in name for job in jobs for name in job.identities or [])


async def test_refreshed_cookies_keep_the_account_logged_in(
    media_files: MediaFiles, make_pacer: PacerFactory, tmp_path: Path
) -> None:
    async with GuardedSite(media_files, strict=True) as site:  # only the newest session token is valid
        site.add_account("alice")
        path = account_file(tmp_path, site, "alice")
        pacer = await make_pacer(parse_site_limits(""), TIMINGS)
        pool = IdentityPool(MemoryIdentityStore(), cookies_dir=tmp_path, proxies=parse_proxies(""))
        for i in range(3):
            await run_job(pacer, pool, Job(site.url(f"/members/{i}.mp4"), f"j{i}"))
            assert site.latest_token["alice"] in path.read_text()
        assert not [hit for hit in site.hits if hit.refused]
        # The site logs the account out: the file is set aside, the job then goes without cookies.
        site.expire_account("alice")
        job = Job(site.url("/media/free.mp4"), "free")
        await run_job(pacer, pool, Job(site.url("/media/x.mp4"), "x"))
        await run_job(pacer, pool, job)
        error = await asyncio.to_thread(fetch, site.url("/members/9.mp4"), await pool.choose("127.0.0.1"))  # type: ignore[arg-type]
        assert error is not None and classify(error) == "login_required"
