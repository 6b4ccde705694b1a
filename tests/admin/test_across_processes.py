"""Bans hold across processes: `mediabot telegram` and `mediabot worker` run as processes on PostgreSQL and
Redis; an admin key made with `mediabot apikey create NAME --admin` bans a person through the API served by
this test's process, and the bot process refuses that person at once."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.bots.test_telegram import BotProcess, media_call, reply_text
from tests.fakes.telegram import ALICE, BOB, FakeTelegram
from tests.support.media_site import MediaSite
from tests.support.services import run_mediabot, settings_env
from tests.web.conftest import web_api, web_settings


@pytest.mark.timeout(120)
async def test_a_ban_made_through_the_api_stops_the_bot_process(
    tmp_path: Path,
    telegram_server: FakeTelegram,
    media_site: MediaSite,
    pg_url: str,
    redis_url: str,
    worker_processes: Any,
) -> None:
    tg = telegram_server
    settings = web_settings(
        tmp_path, database_url=pg_url, redis_url=redis_url, telegram_token=tg.token,
        telegram_api_url=tg.api_url, telegram_admins=str(ALICE.id),
    )  # fmt: skip
    env = settings_env(settings)
    async with web_api(settings, worker=False) as api:  # this process: the web API (migrates the database)
        code, out, err = await run_mediabot(env, "apikey", "create", "ops", "--admin")
        assert code == 0 and "admin API key 'ops'" in out, err
        admin_key = out.strip().splitlines()[-1]
        assert re.fullmatch(r"mb_[A-Za-z0-9_-]{40,}", admin_key)

        worker_processes(settings)
        bot = BotProcess(env, tmp_path / "bot.log")
        bot.start()
        try:
            await tg.wait_call("setMyCommands", timeout=30)
            first = tg.send(media_site.url(f"/clip/{uuid.uuid4().hex[:12]}.mp4"), user=BOB)
            await tg.wait_for(lambda: media_call(tg, "sendVideo", first), timeout=45)

            ban = {"source": "telegram", "user_id": str(BOB.id), "reason": "abuse"}
            status, body, _ = await api.call("POST", "/api/v1/admin/bans", key=admin_key, json=ban)
            assert status == 201, body
            refused = tg.send(media_site.url(f"/clip/{uuid.uuid4().hex[:12]}.mp4"), user=BOB)
            assert await reply_text(tg, refused) == "You can't use this bot. Reason: abuse"
            assert len(tg.calls_to("sendVideo", ok=True)) == 1

            # The operator's /stats in the bot process counts what the worker process did.
            stats = await reply_text(tg, tg.send("/stats"))
            assert "Requests: 1\nDownloads: 1\n" in stats and "Busiest users: telegram:1002 1" in stats

            status, _, _ = await api.call("DELETE", f"/api/v1/admin/bans/telegram/{BOB.id}", key=admin_key)
            assert status == 204
            again = tg.send(media_site.url(f"/clip/{uuid.uuid4().hex[:12]}.mp4"), user=BOB)
            await tg.wait_for(lambda: media_call(tg, "sendVideo", again), timeout=45)
        finally:
            assert await bot.stop() == 0, bot.output()[-3000:]
