"""Subscriptions in the chats end to end: the real Telegram and Discord clients against their fakes, the real
services and worker, and a channel on the local media site that grows while the test runs.

A new video reaches two Telegram chats and a Discord channel with one download; a channel that cannot be read
is paused and its chat told once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.discord.runner import running as discord_running
from bots.telegram.runner import running as telegram_running
from core.bootstrap import Services
from tests.fakes.discord import FakeDiscord
from tests.fakes.telegram import ALICE, BOB, CHANNEL_CHAT_ID, GROUP_CHAT_ID, FakeTelegram
from tests.support.media_site import MediaSite
from tests.support.services import make_settings, running_services, wait_until

pytestmark = pytest.mark.timeout(90)


@contextlib.asynccontextmanager
async def both_bots(
    tmp_path: Path, tg: FakeTelegram, dc: FakeDiscord, **overrides: Any
) -> AsyncIterator[Services]:
    settings = make_settings(
        tmp_path, telegram_token=tg.token, telegram_api_url=tg.api_url, discord_token=dc.token,
        discord_api_url=dc.api_url, shutdown_grace_s=0, **overrides,
    )  # fmt: skip
    identified = len(dc.identifies)
    async with (
        running_services(settings) as services,
        telegram_running(services),
        discord_running(services, guild_ready_timeout=0, edit_interval_s=0.2),
    ):
        await dc.wait_for(lambda: len(dc.identifies) > identified, timeout=15)
        yield services


def text_of(tg: FakeTelegram, asked: dict[str, Any]) -> Any:
    return next((m["text"] for m in tg.replies_to(asked) if "text" in m), None)


def videos_in(tg: FakeTelegram, chat_id: int) -> list[Any]:
    return [c for c in tg.calls_to("sendVideo", ok=True) if c["chat_id"] == chat_id]


def posts_with_files(dc: FakeDiscord, channel_id: str) -> list[Any]:
    return [c for c in dc.channel_posts(channel_id) if c.files]


async def test_a_new_video_reaches_two_chats_and_a_discord_channel_with_one_download(
    tmp_path: Path, telegram_server: FakeTelegram, fake_discord: FakeDiscord, media_site: MediaSite
) -> None:
    tg, dc = telegram_server, fake_discord
    feed = media_site.channel("chats", 2)
    async with both_bots(tmp_path, tg, dc, subscription_interval_s=0.3) as services:
        assert {"subscribe", "subscriptions", "unsubscribe"} <= {c["command"] for c in tg.commands}
        in_private = tg.send(f"/subscribe {feed}", user=ALICE)
        in_group = tg.send(f"/subscribe {feed}", user=BOB, group=True)
        assert "Subscribed" in await tg.wait_for(lambda: text_of(tg, in_private))
        assert "Subscribed" in await tg.wait_for(lambda: text_of(tg, in_group))
        it = await dc.slash("subscribe", {"url": feed})
        await dc.wait_for(
            lambda: any("Subscribed" in (c.json or {}).get("content", "") for c in dc.edits(it.token))
        )

        async def all_checked() -> bool:
            subs = await services.subscriptions.list(source="telegram") + await services.subscriptions.list(
                source="discord"
            )
            return len(subs) == 3 and all(s.checks >= 1 for s in subs)

        await wait_until(all_checked, timeout=30)
        assert (
            videos_in(tg, ALICE.id) == [] and posts_with_files(dc, dc.channel_id) == []
        )  # no back catalogue

        media_site.channel("chats", 3)  # a new video appears on the channel
        await tg.wait_for(lambda: videos_in(tg, ALICE.id), timeout=45)
        await tg.wait_for(lambda: videos_in(tg, GROUP_CHAT_ID), timeout=45)
        post = (await dc.wait_for(lambda: posts_with_files(dc, dc.channel_id), timeout=45))[0]
        assert f"<@{it.user['id']}>" in post.json["content"]
        assert media_site.downloads("/clip/chats-3.mp4") == 1
        assert media_site.downloads("/clip/chats-2.mp4") == 0

        await asyncio.sleep(1.5)  # more checks, and the bots look again: nothing is sent twice
        assert len(videos_in(tg, ALICE.id)) == 1 and len(videos_in(tg, GROUP_CHAT_ID)) == 1
        assert len(posts_with_files(dc, dc.channel_id)) == 1

        listed = tg.send("/subscriptions", user=BOB, group=True)
        assert "1. Channel chats" in await tg.wait_for(lambda: text_of(tg, listed))
        stop = tg.send("/unsubscribe 1", user=BOB, group=True)
        assert "Unsubscribed" in await tg.wait_for(lambda: text_of(tg, stop))
        assert [s.place for s in await services.subscriptions.list(source="telegram")] == [
            f"telegram:{ALICE.id}"
        ]


async def test_a_channel_that_keeps_failing_is_paused_and_the_chat_told_once(
    tmp_path: Path, telegram_server: FakeTelegram, fake_discord: FakeDiscord, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with both_bots(
        tmp_path, tg, fake_discord, subscription_interval_s=0.2, subscription_max_failures=2
    ) as services:
        asked = tg.send(f"/subscribe {media_site.url('/nomedia.html')}", user=ALICE)
        assert "Subscribed" in await tg.wait_for(lambda: text_of(tg, asked))

        def told() -> list[Any]:
            return [m for m in tg.bot_messages(ALICE.id) if "paused" in m.get("text", "")]

        await tg.wait_for(told, timeout=30)
        await asyncio.sleep(1.5)
        assert len(told()) == 1
        [sub] = await services.subscriptions.list(source="telegram")
        assert sub.paused and sub.checks == 2
        again = tg.send(f"/subscribe {media_site.url('/nomedia.html')}", user=ALICE)
        assert "already follows" in await tg.wait_for(lambda: text_of(tg, again))
        [resumed] = await services.subscriptions.list(source="telegram")
        assert not resumed.paused or resumed.checks > 2


async def test_a_telegram_channel_follows_a_channel_and_an_allowlist_keeps_other_channels_out(
    tmp_path: Path, telegram_server: FakeTelegram, fake_discord: FakeDiscord, media_site: MediaSite
) -> None:
    tg = telegram_server
    feed = media_site.channel("tgchannel", 1)
    allowed = [str(ALICE.id), str(CHANNEL_CHAT_ID)]
    async with both_bots(
        tmp_path, tg, fake_discord, subscription_interval_s=0.3, telegram_allowed_users=allowed
    ) as services:
        post = tg.post_in_channel(f"/subscribe {feed}")
        assert "Subscribed" in await tg.wait_for(lambda: text_of(tg, post))
        [sub] = await services.subscriptions.list(source="telegram")
        assert sub.place == f"telegram:{CHANNEL_CHAT_ID}" and sub.user_id == str(CHANNEL_CHAT_ID)
        elsewhere = tg.post_in_channel(f"/subscribe {feed}", chat_id=-100999)  # not on the allowlist

        async def checked() -> bool:
            return (await services.subscriptions.list(source="telegram"))[0].checks >= 1

        await wait_until(checked, timeout=30)
        media_site.channel("tgchannel", 2)
        await tg.wait_for(lambda: videos_in(tg, CHANNEL_CHAT_ID), timeout=45)
        assert tg.replies_to(elsewhere) == []
        assert len(await services.subscriptions.list(source="telegram")) == 1
