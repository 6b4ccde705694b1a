"""The operator's Discord slash commands against the fake Discord, over the real services and worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.admin import texts as admin_texts
from tests.bots.test_discord import EPHEMERAL, clip, discord_bot
from tests.fakes.discord import FakeDiscord, Interaction

pytestmark = pytest.mark.timeout(90)


async def answer(fake: FakeDiscord, interaction: Interaction) -> str:
    """The ephemeral message the command was answered with."""
    [call] = await fake.wait_for(lambda: fake.callbacks(interaction))
    assert call.json["data"]["flags"] & EPHEMERAL, call.json
    return str(call.json["data"]["content"])


async def test_operator_slash_commands(fake_discord: FakeDiscord, tmp_path: Path, media_site: Any) -> None:
    fake = fake_discord
    ops, bob = fake.make_user("ops"), fake.make_user("bob")
    async with discord_bot(fake, tmp_path, discord_admins=ops["id"]) as env:
        for name, options in (
            ("stats", {}),
            ("queue", {}),
            ("ban", {"user": ops["id"]}),
            ("unban", {"user": "1"}),
        ):
            asked = await fake.slash(name, options, user=bob)
            assert await answer(fake, asked) == "I don't know that command.", name

        first = await fake.slash("download", {"url": clip(media_site)}, user=bob)
        await env.final(first)
        stats = await answer(fake, await fake.slash("stats", user=ops))
        assert "Requests: 1\nDownloads: 1\n" in stats and f"Busiest users: discord:{bob['id']} 1" in stats

        said = await answer(fake, await fake.slash("ban", {"user": ops["id"]}, user=ops))
        assert said == admin_texts.BAN_SELF
        said = await answer(fake, await fake.slash("ban", {"user": "123456789"}, user=ops))
        assert said == admin_texts.UNKNOWN_USER
        said = await answer(fake, await fake.slash("ban", {"user": "bob"}, user=ops))
        assert said == admin_texts.BAD_USER_ID
        said = await answer(
            fake, await fake.slash("ban", {"user": f"<@{bob['id']}>", "reason": "spam"}, user=ops)
        )
        assert said == f"Banned {bob['id']}: spam."

        refused = await fake.slash("download", {"url": clip(media_site)}, user=bob)
        assert await answer(fake, refused) == "You can't use this bot. Reason: spam"
        listed = await fake.slash("subscriptions", user=bob)
        assert await answer(fake, listed) == "You can't use this bot. Reason: spam"
        assert len(await env.requests(bob)) == 1

        said = await answer(fake, await fake.slash("limits", {"user": bob["id"], "per_hour": 7}, user=ops))
        assert said == f"{bob['id']} may now start 7 downloads per hour."
        assert (await env.services.admin.quota("discord", bob["id"])).requests_per_hour == 7
        said = await answer(fake, await fake.slash("unban", {"user": bob["id"]}, user=ops))
        assert said == f"{bob['id']} may use the bot again."
        again = await fake.slash("download", {"url": clip(media_site)}, user=bob)
        await env.final(again)
        assert await answer(fake, await fake.slash("queue", user=ops)) == "Nothing is running or waiting."
