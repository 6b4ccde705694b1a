"""The Discord bot and the delivery planner, end to end: the real discord.py client against the fake Discord,
over mediabot's real services and worker, with files on each side of the interaction's upload limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.discord.runner import running
from core.jobs.views import JobView, RequestView
from core.words import human_size
from tests.bots.test_discord import Bot, attachment, bot_settings, clip
from tests.fakes.discord import Call, FakeDiscord, Interaction
from tests.support.media import ffprobe
from tests.support.services import running_services, wait_until

pytestmark = pytest.mark.timeout(60)

MIB = 1024 * 1024
FOLLOWUP = r"^POST /webhooks/\d+/[^/]+$"
BOT_OPTIONS: dict[str, Any] = {"guild_ready_timeout": 0, "edit_interval_s": 0.2, "chat_interval_s": 0.1}


@contextlib.asynccontextmanager
async def discord_bot(fake: FakeDiscord, tmp_path: Path, **overrides: Any) -> AsyncIterator[Bot]:
    """The bot over running services (as in test_discord.py), with short edit and chat intervals."""
    settings = bot_settings(fake, tmp_path, **overrides)
    identified = len(fake.identifies)
    async with running_services(settings) as services, running(services, **BOT_OPTIONS):
        await fake.wait_for(lambda: len(fake.identifies) > identified, timeout=15)
        yield Bot(fake, services)


async def ended(fake: FakeDiscord, interaction: Interaction, timeout: float = 30) -> Call:
    """The edit that ended the reply (the Cancel button removed), once its content is final."""

    def find() -> Call | None:
        done = [c for c in fake.edits(interaction.token) if (c.json or {}).get("components") == []]
        return done[-1] if done else None

    return await fake.wait_for(find, timeout)


async def root(env: Bot, user: dict[str, Any]) -> tuple[RequestView, JobView]:
    """The person's one request (not the copies and playlist items made for it)."""

    async def find() -> list[tuple[RequestView, JobView]]:
        return [(r, j) for r, j in await env.requests(user) if r.parent_id is None]

    [pair] = await wait_until(find, timeout=10)
    return pair


def contents(fake: FakeDiscord) -> list[str]:
    """Every message text the bot sent to Discord."""
    out = []
    for call in fake.calls:
        body = call.json if isinstance(call.json, dict) else {}
        data = body.get("data") if isinstance(body.get("data"), dict) else body
        if isinstance(data, dict) and isinstance(data.get("content"), str):
            out.append(data["content"])
    return out


def assert_nothing_leaked(fake: FakeDiscord, tmp_path: Path, *interactions: Interaction) -> None:
    for text in contents(fake):
        assert str(tmp_path) not in text and "Traceback" not in text and fake.token not in text, text
        assert all(it.token not in text for it in interactions), text


def unique(media_site: Any, path: str) -> str:
    return media_site.url(f"{path}?n={uuid.uuid4().hex[:8]}")


async def test_a_file_under_the_limit_is_attached_as_it_is(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        it = await fake_discord.slash("download", {"url": clip(media_site)}, attachment_size_limit=300_000)
        final = await ended(fake_discord, it)
        path = attachment(final)
        assert 200_000 < path.stat().st_size <= 300_000
        assert {s["codec_type"] for s in ffprobe(path)["streams"]} == {"video", "audio"}
        assert "to fit" not in final.json["content"] and "Download it" not in final.json["content"]
        request, _ = await root(env, it.user)
        assert await env.services.jobs.children(request.id) == [], "no copy was asked for"
        await env.delivered(request.id)
    assert_nothing_leaked(fake_discord, tmp_path, it)


async def test_a_smaller_format_is_sent_with_a_full_quality_link_and_the_copy_is_cached(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    big_before = media_site.downloads("/big.mp4")
    small_before = media_site.downloads("/video.mp4")
    async with discord_bot(fake_discord, tmp_path) as env:
        it = await fake_discord.slash(
            "download", {"url": media_site.url("/qualities.html")}, attachment_size_limit=1_000_000
        )
        final = await ended(fake_discord, it)
        path = attachment(final)
        assert path.stat().st_size <= 1_000_000
        assert ffprobe(path)["streams"][0]["height"] == 240
        content = final.json["content"]
        assert "Sent at 240p to fit Discord's 1 MB limit." in content
        assert f"Full quality: {env.services.settings.public_url}/" in content and "(expires <t:" in content
        assert media_site.downloads("/big.mp4") - big_before == 1, "the full quality was downloaded once"
        request, _ = await root(env, it.user)
        [(copy_request, copy)] = await env.services.jobs.children(request.id)
        assert copy.fit_method == "smaller_format" and copy.height == 240
        await env.delivered(request.id)

        # The same media for the same limit: the copy made for the first request answers at once.
        again = await fake_discord.slash(
            "download", {"url": media_site.url("/qualities.html")}, attachment_size_limit=1_000_000,
            user=fake_discord.make_user("bob"),
        )  # fmt: skip
        final = await ended(fake_discord, again, timeout=10)
        assert final.at - again.created < 3.0
        assert attachment(final).read_bytes() == path.read_bytes()
        assert "Sent at 240p to fit Discord's 1 MB limit." in final.json["content"]
        second, _ = await root(env, again.user)
        [(cached, same)] = await env.services.jobs.children(second.id)
        assert same.id == copy.id and cached.outcome == "cached", "no new copy was made"
        assert media_site.downloads("/big.mp4") - big_before == 1
        assert media_site.downloads("/video.mp4") - small_before == 1
    assert_nothing_leaked(fake_discord, tmp_path, it, again)


async def test_a_reencoded_copy_fits_when_the_site_offers_no_smaller_format(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    limit = 254_000 // 2
    async with discord_bot(fake_discord, tmp_path, reencode_to_fit=True) as env:
        it = await fake_discord.slash(
            "download", {"url": unique(media_site, "/video.mp4")}, attachment_size_limit=limit
        )
        final = await ended(fake_discord, it)
        path = attachment(final)
        assert path.stat().st_size <= limit
        assert {s["codec_type"] for s in ffprobe(path)["streams"]} >= {"video"}
        assert (
            "Re-encoded" in final.json["content"]
            and "to fit Discord's 127 KB limit." in final.json["content"]
        )
        assert "Full quality: " in final.json["content"]
        # While the copy was made, the reply said so (and kept its Cancel button).
        assert any(
            "Making a copy that fits 127 KB" in (c.json or {}).get("content", "") and c.json.get("components")
            for c in fake_discord.edits(it.token)
        )
        request, _ = await root(env, it.user)
        [(_, copy)] = await env.services.jobs.children(request.id)
        assert copy.fit_method == "reencode" and copy.filesize == path.stat().st_size
    assert_nothing_leaked(fake_discord, tmp_path, it)


async def test_a_link_when_no_copy_fits(fake_discord: FakeDiscord, tmp_path: Path, media_site: Any) -> None:
    async with discord_bot(fake_discord, tmp_path, reencode_to_fit=False) as env:
        it = await fake_discord.slash(
            "download", {"url": unique(media_site, "/video.mp4")}, attachment_size_limit=100_000
        )
        final = await ended(fake_discord, it)
        assert not final.files
        assert not [c for c in fake_discord.edits(it.token, ok=False) if c.files], "no upload was tried"
        content = final.json["content"]
        request, job = await root(env, it.user)
        # The size ffmpeg's build gave the generated video, as the stored file has it (not a fixed number).
        stored = await env.services.jobs.local_path(job.id)
        assert stored is not None
        size = human_size(stored.stat().st_size)
        assert f"Too large for Discord ({size}), and no smaller copy fits its 100 KB limit." in content
        assert f"Download it: {env.services.settings.public_url}/" in content and "expires <t:" in content
        [(_, copy)] = await env.services.jobs.children(request.id)
        assert copy.status == "failed" and copy.error is not None and copy.error.code == "wont_fit"
        await env.delivered(request.id)
    assert_nothing_leaked(fake_discord, tmp_path, it)


async def test_a_refused_upload_under_the_stated_limit_falls_back_to_a_copy_then_to_a_link(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        # 30.7 MB is under the 50 MiB the interaction states, yet Discord answers 40005: aim for 10 MiB.
        fake_discord.reject_uploads(times=1, status=413, code=40005)
        it = await fake_discord.slash(
            "download", {"url": media_site.url("/qualities.html")}, attachment_size_limit=50 * MIB
        )
        final = await ended(fake_discord, it)
        [refused] = [c for c in fake_discord.edits(it.token, ok=False) if c.status == 413]
        assert refused.files[0].size > 30_000_000
        path = attachment(final)
        assert ffprobe(path)["streams"][0]["height"] == 240 and path.stat().st_size < 10 * MIB
        assert "Sent at 240p to fit Discord's 10 MB limit." in final.json["content"]
        assert "Full quality: " in final.json["content"]

        # Refused again, the copy too: nothing smaller exists (re-encoding is off), so a link.
        fake_discord.reject_uploads(times=2, status=413, code=40005)
        again = await fake_discord.slash(
            "download", {"url": media_site.url("/qualities.html")}, attachment_size_limit=50 * MIB,
            user=fake_discord.make_user("bob"),
        )  # fmt: skip
        final = await ended(fake_discord, again)
        assert not final.files
        assert len([c for c in fake_discord.edits(again.token, ok=False) if c.status == 413]) == 2
        assert (
            "Download it: " in final.json["content"]
            and f"Too large for Discord ({human_size(refused.files[0].size)})" in final.json["content"]
        )
        request, _ = await root(env, again.user)
        await env.delivered(request.id)
    assert_nothing_leaked(fake_discord, tmp_path, it, again)


def clip_downloads(media_site: Any, total: int) -> list[int]:
    return [media_site.downloads(f"/clip/{i}.mp4") for i in range(1, total + 1)]


async def test_a_playlist_is_cut_at_the_limit_and_each_item_is_posted(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    before = clip_downloads(media_site, 143)
    async with discord_bot(fake_discord, tmp_path, max_playlist_items=3) as env:
        it = await fake_discord.slash("download", {"url": media_site.url("/feed.xml?n=143")})
        final = await ended(fake_discord, it)
        lines = final.json["content"].splitlines()
        assert lines[:2] == ["**Channel of 143**", "Playlist: 3 of 143 items"]
        assert lines[2:] == [f"{i}. Clip {i} · sent" for i in (1, 2, 3)] + ["Sent 3 of 3 items."]
        posted = fake_discord.followups(it.token)
        assert len(posted) == 3 and all(len(c.files) == 1 for c in posted)
        assert sorted(c.json["content"].split("**")[1] for c in posted) == ["Clip 1", "Clip 2", "Clip 3"]
        for call in posted:
            assert {s["codec_type"] for s in ffprobe(call.files[0].path)["streams"]} == {"video", "audio"}
        after = clip_downloads(media_site, 143)
        assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1] + [0] * 140
        request, job = await root(env, it.user)
        assert job.playlist is not None and (job.playlist.count, job.playlist.total) == (3, 143)
        await env.delivered(request.id)
        items = await env.services.jobs.children(request.id)
        assert all(r.delivered_at is not None and r.target["delivered_as"] == "file" for r, _ in items)
    assert_nothing_leaked(fake_discord, tmp_path, it)


async def test_a_playlist_lists_its_items_as_they_finish(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        # Three 30 MB items, two at a time: the third is held on its way until the reply has listed some
        # sent. Over the 10 MiB limit with no smaller format, each item goes out as a link.
        gate = uuid.uuid4().hex[:8]
        media_site.open_gate(f"{gate}-1")
        media_site.open_gate(f"{gate}-2")
        it = await fake_discord.slash(
            "download", {"url": media_site.url(f"/feed.xml?n=3&item=gated&gate={gate}")}
        )

        def states(call: Call) -> list[str]:
            return [line.rsplit(" · ", 1)[1] for line in call.json["content"].splitlines()[2:5]]

        def listed() -> list[list[str]]:
            return [
                states(c)
                for c in fake_discord.edits(it.token)
                if c.json.get("components") and "Playlist" in c.json["content"]
            ]

        await fake_discord.wait_for(lambda: any("sent as a link" in s for s in listed()), 30)
        media_site.open_gate(f"{gate}-3")
        final = await ended(fake_discord, it)
        lines = final.json["content"].splitlines()
        assert lines[1:] == ["Playlist: 3 items"] + [f"{i}. Clip {i} · sent as a link" for i in (1, 2, 3)] + [
            "Sent 3 of 3 items."
        ]
        posted = fake_discord.followups(it.token)
        assert len(posted) == 3 and not any(c.files for c in posted)
        assert all(
            "Download it: " in c.json["content"] and "no smaller copy fits" in c.json["content"]
            for c in posted
        )
        assert listed(), "the reply listed the items while they were on their way"
        assert any("sent as a link" in s and s[2] != "sent as a link" for s in listed()), listed()
        request, _ = await root(env, it.user)
        await env.delivered(request.id)
    assert_nothing_leaked(fake_discord, tmp_path, it)


async def test_after_the_token_expires_playlist_items_are_posted_in_the_channel(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    fake_discord.token_ttl_s = 2.0  # Discord: 15 minutes
    async with discord_bot(fake_discord, tmp_path, discord_interaction_ttl_s=1.0) as env:
        it = await fake_discord.slash(
            "download", {"url": media_site.url("/feed.xml?n=2&item=slow&rate=15000001")}
        )
        request, _ = await root(env, it.user)
        await env.delivered(request.id)
        posts = fake_discord.channel_posts(fake_discord.channel_id)
        assert len(posts) == 3, [c.json["content"] for c in posts]
        mention = f"<@{it.user['id']}> "
        assert all(c.json["content"].startswith(mention) for c in posts)
        assert sorted(c.json["content"].split("**")[1] for c in posts[:2]) == ["Clip 1", "Clip 2"]
        assert all(str(c.json["message_reference"]["message_id"]) == it.message_id for c in posts)
        assert posts[2].json["content"].endswith("Sent 2 of 2 items.")
        assert "Playlist: 2 items" in posts[2].json["content"]
        assert all(c.status == 200 for c in fake_discord.webhook_calls(it.token)), "no call with a dead token"
    assert_nothing_leaked(fake_discord, tmp_path, it)


async def test_cancelling_a_playlist_stops_its_items(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        alice, bob = fake_discord.make_user("alice"), fake_discord.make_user("bob")
        # Slow items (30 MB at 300 kB/s each): still downloading when the Cancel button is pressed.
        it = await fake_discord.slash(
            "download", {"url": media_site.url("/feed.xml?n=3&item=slow&rate=300000")}, user=alice
        )

        def listing() -> Call | None:
            edits = [
                c for c in fake_discord.edits(it.token)
                if c.json.get("components") and "Playlist: 3 items" in c.json["content"]
            ]  # fmt: skip
            return edits[-1] if edits else None

        edit = await fake_discord.wait_for(listing, 30)
        request, _ = await root(env, alice)
        await wait_until(lambda: _any_item_running(env, request.id), timeout=15)
        [button] = fake_discord.buttons(edit.json)
        click = await fake_discord.click(it.message_id or "", button["custom_id"], user=alice)
        [update] = await fake_discord.wait_for(lambda: fake_discord.callbacks(click))
        assert update.json["type"] == 7 and update.json["data"]["components"] == []
        content = update.json["data"]["content"]
        assert "Playlist: 3 items" in content and content.endswith("Cancelled after sending 0 of 3 items.")
        assert [line.rsplit(" · ", 1)[1] for line in content.splitlines()[2:5]] == ["cancelled"] * 3
        await wait_until(lambda: _items_cancelled(env, request.id), timeout=15)
        edits_after = len(fake_discord.edits(it.token))
        await asyncio.sleep(0.5)
        assert len(fake_discord.edits(it.token)) == edits_after, "no edit after the cancel"
        assert not fake_discord.followups(it.token, ok=False), "no item was posted"
        await env.delivered(request.id)

        # /cancel cancels a playlist as one download, through its reply.
        other = await fake_discord.slash(
            "download", {"url": media_site.url("/feed.xml?n=2&item=slow&rate=300001")}, user=bob
        )
        await fake_discord.wait_for(
            lambda: any("Playlist: 2 items" in c.json["content"] for c in fake_discord.edits(other.token)), 30
        )
        second, _ = await root(env, bob)
        await wait_until(lambda: _any_item_running(env, second.id), timeout=15)
        command = await fake_discord.slash("cancel", user=bob)
        [answer] = await fake_discord.wait_for(lambda: fake_discord.callbacks(command))
        assert answer.json["data"]["content"] == "Cancelled 1 download."
        final = await ended(fake_discord, other)
        assert final.json["content"].endswith("Cancelled after sending 0 of 2 items.")
        await wait_until(lambda: _items_cancelled(env, second.id), timeout=15)
        await env.delivered(second.id)
    assert_nothing_leaked(fake_discord, tmp_path, it, other)


async def _any_item_running(env: Bot, request_id: str) -> bool:
    return any(j.status == "running" for _, j in await env.services.jobs.children(request_id))


async def _items_cancelled(env: Bot, request_id: str) -> bool:
    items = await env.services.jobs.children(request_id)
    return bool(items) and all(r.status == "cancelled" and j.status == "cancelled" for r, j in items)


async def test_a_half_delivered_playlist_continues_after_a_restart_without_reposting(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    settings = bot_settings(fake_discord, tmp_path)
    async with running_services(settings) as services:
        env = Bot(fake_discord, services)
        # The first item goes out; the second meets a long rate limit, and the bot stops meanwhile.
        fake_discord.rate_limit(FOLLOWUP, times=1, retry_after=30.0, after=1)
        async with running(services, **BOT_OPTIONS):
            await fake_discord.wait_for(lambda: fake_discord.identifies)
            it = await fake_discord.slash("download", {"url": media_site.url("/feed.xml?n=3")})
            await fake_discord.wait_for(
                lambda: [c for c in fake_discord.followups(it.token, ok=False) if c.status == 429]
            )
        [first] = fake_discord.followups(it.token)
        request, _ = await root(env, it.user)
        items = await services.jobs.children(request.id)
        assert request.delivered_at is None and sum(r.delivered_at is not None for r, _ in items) == 1

        started = time.monotonic()
        async with running(services, **BOT_OPTIONS):
            final = await ended(fake_discord, it)
            assert time.monotonic() - started < 15
            await env.delivered(request.id)
        assert final.json["content"].endswith("Sent 3 of 3 items.")
        posted = fake_discord.followups(it.token)
        titles = sorted(c.json["content"].split("**")[1] for c in posted)
        assert titles == ["Clip 1", "Clip 2", "Clip 3"], "each item posted once"
        assert posted[0] is first
    assert_nothing_leaked(fake_discord, tmp_path, it)
