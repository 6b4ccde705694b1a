"""The operator's Telegram commands end to end: the real bot against the fake Bot API server, the real job
service and worker, the local media site. Alice (1001) is the operator; Bob (1002) and Carol (1003) are not."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bots.telegram import texts
from bots.telegram.runner import running
from core.admin import texts as admin_texts
from core.bootstrap import Services
from tests.fakes.telegram import ALICE, BOB, Call, FakeTelegram
from tests.support.media_site import MediaSite
from tests.support.services import make_settings, running_services

pytestmark = pytest.mark.timeout(90)


@contextlib.asynccontextmanager
async def bot(tmp_path: Path, tg: FakeTelegram, **overrides: Any) -> AsyncIterator[Services]:
    settings = make_settings(
        tmp_path, telegram_token=tg.token, telegram_api_url=tg.api_url, telegram_admins=str(ALICE.id),
        shutdown_grace_s=0, **overrides,
    )  # fmt: skip
    async with running_services(settings) as services, running(services):
        yield services


def clip(site: MediaSite) -> str:
    return site.url(f"/clip/{uuid.uuid4().hex[:12]}.mp4")


async def said(tg: FakeTelegram, asked: dict[str, Any], timeout: float = 20) -> str:
    """The text of the bot's first plain reply to a message."""
    message = await tg.wait_for(lambda: next((m for m in tg.replies_to(asked) if "text" in m), None), timeout)
    return str(message["text"])


def media_call(tg: FakeTelegram, asked: dict[str, Any]) -> Call | None:
    return next(
        (c for c in tg.calls_to("sendVideo", ok=True)
         if (c.get("reply_parameters") or {}).get("message_id") == asked["message_id"]
         and c["chat_id"] == asked["chat"]["id"]),
        None,
    )  # fmt: skip


async def test_operator_commands_stats_limits_ban_and_unban(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with bot(tmp_path, tg, user_requests_per_hour=1) as services:
        # Only the operator's chat has the operator's commands in its menu.
        await tg.wait_for(lambda: ALICE.id in tg.chat_commands)
        assert {"stats", "ban", "unban", "limits", "queue"} <= {
            c["command"] for c in tg.chat_commands[ALICE.id]
        }
        assert not {"stats", "ban"} & {c["command"] for c in tg.commands}

        # To anyone else they do not exist.
        for command in ("/stats", "/ban 1001", "/unban 1001", "/limits 1002 100", "/queue"):
            asked = tg.send(command, user=BOB)
            assert await said(tg, asked) == texts.UNKNOWN_COMMAND, command

        # Bob downloads once; his quota of one an hour is then used up.
        first = tg.send(clip(media_site), user=BOB)
        await tg.wait_for(lambda: media_call(tg, first), timeout=30)
        over = tg.send(clip(media_site), user=BOB)
        assert "1 download" in await said(tg, over)

        stats = await said(tg, tg.send("/stats"))
        today, week = stats.split("\n\n")
        for block in (today, week):
            assert "Requests: 1\n" in block and "Downloads: 1\n" in block and "Cache hits: 0\n" in block
            assert "Top sites: 127.0.0.1 1" in block and "Busiest users: telegram:1002 1" in block
            assert "Failures: none" in block
        assert today.startswith("Today (UTC):") and week.startswith("Last 7 days:")

        # /limits raises Bob's quota: his next link is taken.
        assert await said(tg, tg.send("/limits 1002 5")) == "1002 may now start 5 downloads per hour."
        assert (
            await said(tg, tg.send("/limits 1002"))
            == "1002 may start 5 downloads per hour (their own limit)."
        )
        assert await said(tg, tg.send("/limits 1002 lots")) == admin_texts.BAD_LIMIT
        assert await said(tg, tg.send("/limits 1002 0")) == admin_texts.BAD_LIMIT
        assert (
            await said(tg, tg.send("/limits 9", reply_to=first)) == "1002 may now start 9 downloads per hour."
        )
        assert await said(tg, tg.send("/limits 1002 5")) == "1002 may now start 5 downloads per hour."
        second = tg.send(clip(media_site), user=BOB)
        await tg.wait_for(lambda: media_call(tg, second), timeout=30)
        assert await said(tg, tg.send("/queue")) == "Nothing is running or waiting."

        # Bad bans: one sentence each.
        assert await said(tg, tg.send("/ban")) == admin_texts.BAN_USAGE
        assert await said(tg, tg.send("/ban 1001")) == admin_texts.BAN_SELF
        assert await said(tg, tg.send("/ban 424242 spam")) == admin_texts.UNKNOWN_USER
        assert await said(tg, tg.send("/unban 1003")) == admin_texts.NOT_BANNED

        # A ban by replying to Bob's message: afterwards Bob reads one sentence, whatever he sends.
        answer = await said(tg, tg.send("/ban sends spam", reply_to=first))
        assert answer == "Banned 1002: sends spam."
        jobs_before = len(await services.jobs.active_requests("telegram", str(BOB.id)))
        sent_before = len(tg.calls_to("sendMessage", "sendVideo"))
        refused = tg.send(clip(media_site), user=BOB)
        assert await said(tg, refused) == "You can't use this bot. Reason: sends spam"
        helped = tg.send("/help", user=BOB)
        assert await said(tg, helped) == "You can't use this bot. Reason: sends spam"
        # The same link Telegram already has (a resend, no download): refused too.
        cached = tg.send(first["text"], user=BOB)
        assert await said(tg, cached) == "You can't use this bot. Reason: sends spam"
        assert len(tg.calls_to("sendMessage", "sendVideo")) == sent_before + 3
        assert len(await services.jobs.active_requests("telegram", str(BOB.id))) == jobs_before
        assert [(b.user_id, b.banned_by) for b in await services.admin.bans()] == [("1002", "telegram:1001")]

        assert await said(tg, tg.send("/unban 1002")) == "1002 may use the bot again."
        back = tg.send(clip(media_site), user=BOB)
        await tg.wait_for(lambda: media_call(tg, back), timeout=30)
