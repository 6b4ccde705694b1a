"""Identity pools on both backends: turns, rests that double up to a cap, files set aside and back, proxies
that rest for every site, one wheel for every worker."""

from __future__ import annotations

import logging
import os
import random
import time
from pathlib import Path

import pytest

from core.pacing import Backoff, Identity, IdentityPool, Resting, parse_proxies

from .conftest import StoreFactory

SECRET = "s3cret-session-value"


def cookies(folder: Path, name: str, token: str = SECRET) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# Netscape HTTP Cookie File\n\n.example.com\tTRUE\t/\tTRUE\t0\tsession\t{token}-{name}\n"
    )
    path.chmod(0o600)
    return path


@pytest.fixture
def cookies_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "cookies"
    cookies(folder, "youtube/a.txt")
    cookies(folder, "youtube/b.txt")
    return folder


async def make_pool(
    make_store: StoreFactory, cookies_dir: Path | None, proxies: str = "", **backoff: float
) -> IdentityPool:
    return IdentityPool(
        await make_store(),
        cookies_dir=cookies_dir,
        proxies=parse_proxies(proxies),
        backoff=Backoff(**backoff),
        rng=random.Random(7),
    )


async def take(pool: IdentityPool, site: str = "youtube", url: str | None = None) -> Identity:
    chosen = await pool.choose(site, url)
    assert isinstance(chosen, Identity), chosen
    return chosen


async def test_every_pair_in_turn_changing_account_and_address(
    make_store: StoreFactory, cookies_dir: Path
) -> None:
    pool = await make_pool(make_store, cookies_dir, "youtube=http://p1:3128|http://u:pw@p2:3128|http://p3:1")
    turns = [await take(pool) for _ in range(7)]
    names = [t.name for t in turns]
    assert len(set(names[:6])) == 6 and names[6] == names[0]
    for one, two in zip(turns, turns[1:], strict=False):
        assert one.cookies != two.cookies and one.proxy != two.proxy
    assert all("pw" not in name for name in names)
    assert {t.cookies.name for t in turns if t.cookies} == {"youtube/a.txt", "youtube/b.txt"}


async def test_one_wheel_for_every_worker(make_store: StoreFactory, cookies_dir: Path) -> None:
    first = await make_pool(make_store, cookies_dir)
    second = await make_pool(make_store, cookies_dir)  # another process on Redis
    names = [(await take(pool)).cookies.name for pool in (first, second, first, second)]  # type: ignore[union-attr]
    assert names[0] != names[1] and names[0] == names[2] and names[1] == names[3]
    # A rest noted by one is seen by the other.
    resting = await take(first)
    await first.rate_limited(resting)
    assert all([(await take(second)).name != resting.name for _ in range(4)])


async def test_rests_double_up_to_the_cap_with_jitter(make_store: StoreFactory, cookies_dir: Path) -> None:
    pool = await make_pool(make_store, cookies_dir, base_s=60, cap_s=200, jitter=0.25)
    identity = await take(pool)
    lengths = []
    for _ in range(4):
        before = time.time()
        lengths.append(await pool.rate_limited(identity) - before)
    for length, full in zip(lengths, [60, 120, 200, 200], strict=True):
        assert full * 0.75 - 0.5 <= length <= full + 0.5
    await pool.succeeded(identity)  # a success clears the strikes: the next rest is the first again
    assert await pool.rate_limited(identity) - time.time() <= 60


def test_jitter_spreads_rests_within_bounds() -> None:
    backoff = Backoff(base_s=10, cap_s=1000, jitter=0.25)
    rng = random.Random(1)
    for strikes, full in [(1, 10), (2, 20), (3, 40), (10, 1000)]:
        samples = [backoff.rest_s(strikes, rng) for _ in range(500)]
        assert min(samples) >= full * 0.75 and max(samples) <= full
        assert max(samples) - min(samples) > full * 0.2  # really spread, not one value


async def test_every_identity_resting_means_wait_not_fail(
    make_store: StoreFactory, cookies_dir: Path
) -> None:
    pool = await make_pool(make_store, cookies_dir, base_s=30)
    a, b = await take(pool), await take(pool)
    await pool.rate_limited(a)
    until_b = await pool.rate_limited(b, bot_check=True)
    resting = await pool.choose("youtube")
    assert isinstance(resting, Resting)
    assert 20 < resting.retry_after <= 30
    assert resting.until <= until_b + 30
    # Another site is not touched.
    assert isinstance(await pool.choose("vimeo"), Identity)


async def test_no_cookies_no_proxy_is_one_direct_identity(make_store: StoreFactory) -> None:
    pool = await make_pool(make_store, None, base_s=5)
    identity = await take(pool, "example.com")
    assert identity.name == "-@direct"
    await pool.rate_limited(identity)
    assert isinstance(await pool.choose("example.com"), Resting)


async def test_login_required_sets_the_file_aside_until_replaced(
    make_store: StoreFactory, cookies_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await make_pool(make_store, cookies_dir)
    other = await make_pool(make_store, cookies_dir)
    identity = await take(pool)
    with caplog.at_level(logging.INFO, logger="core.pacing"):
        await pool.login_required(identity)
    assert identity.cookies is not None
    assert identity.cookies.name in caplog.text and SECRET not in caplog.text
    used = {(await take(other)).cookies.name for _ in range(4)}  # type: ignore[union-attr]
    assert used == {"youtube/a.txt", "youtube/b.txt"} - {identity.cookies.name}
    stats = await other.stats()
    assert stats.sites[0].set_aside == (identity.cookies.name,)
    # The operator puts a fresh export in place: the file is used again.
    fresh = cookies(cookies_dir, identity.cookies.name, token="fresh")
    os.utime(fresh, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    used = {(await take(other)).cookies.name for _ in range(4)}  # type: ignore[union-attr]
    assert used == {"youtube/a.txt", "youtube/b.txt"}


async def test_every_file_aside_goes_without_cookies(make_store: StoreFactory, cookies_dir: Path) -> None:
    pool = await make_pool(make_store, cookies_dir)
    for _ in range(2):
        await pool.login_required(await take(pool))
    assert (await take(pool)).cookies is None


async def test_an_unreachable_proxy_rests_for_every_site(make_store: StoreFactory, cookies_dir: Path) -> None:
    pool = await make_pool(make_store, cookies_dir, "http://dead:3128,http://alive:3128")
    dead = next(i for i in [await take(pool) for _ in range(4)] if i.proxy and "dead" in i.proxy.url)
    await pool.proxy_failed(dead)
    assert all([(await take(pool)).proxy.url == "http://alive:3128" for _ in range(4)])  # type: ignore[union-attr]
    assert all([(await take(pool, "vimeo")).proxy.url == "http://alive:3128" for _ in range(2)])  # type: ignore[union-attr]
    assert list((await pool.stats()).proxies_resting) == ["http://dead:3128"]


async def test_legacy_single_file_and_refused_files(make_store: StoreFactory, tmp_path: Path) -> None:
    folder = tmp_path / "cookies"
    cookies(folder, "youtube.com.txt")
    cookies(folder, "vimeo/open.txt").chmod(0o644)  # every user could read it: refused
    pool = await make_pool(make_store, folder)
    legacy = await take(pool, "youtube", "https://www.youtube.com/watch?v=x")
    assert legacy.cookies is not None and legacy.cookies.name == "youtube.com.txt"
    assert (await take(pool, "vimeo", "https://vimeo.com/1")).cookies is None


async def test_stats_per_site_and_identity(make_store: StoreFactory, cookies_dir: Path) -> None:
    pool = await make_pool(make_store, cookies_dir)
    a, b = await take(pool), await take(pool)
    await pool.succeeded(a)
    await pool.report(b, "rate_limited")
    await pool.report(b, None)  # not the identity's fault: nothing
    await take(pool, "vimeo")
    stats = {site.site: site for site in (await (await make_pool(make_store, cookies_dir)).stats()).sites}
    youtube = stats["youtube"]
    assert youtube.counts["requests"] == 2 and youtube.counts["successes"] == 1
    assert youtube.counts["rate_limits"] == 1
    by_name = {i.identity: i for i in youtube.identities}
    assert by_name[a.name].counts["successes"] == 1 and by_name[a.name].resting_until is None
    assert by_name[b.name].resting_until is not None and by_name[b.name].resting_until > time.time()
    assert stats["vimeo"].counts["requests"] == 1
