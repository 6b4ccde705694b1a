"""Issue 24 item 1 on Discord: an interaction's `locale` picks the language of every answer (progress edits
included), /language overrides it (an unknown code: English with a note), and the commands' descriptions
carry localizations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.bots.test_discord import clip, discord_bot
from tests.fakes.discord import FakeDiscord

pytestmark = pytest.mark.timeout(60)


async def answer(fake: FakeDiscord, name: str, options: dict[str, Any] | None = None, **kw: Any) -> str:
    it = await fake.slash(name, options, **kw)
    [callback] = await fake.wait_for(lambda: fake.callbacks(it))
    return str(callback.json["data"]["content"])


async def test_a_german_app_gets_german_and_language_overrides_it(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    fake = fake_discord
    async with discord_bot(fake, tmp_path) as env:
        [download] = [c for c in fake.commands[None] if c["name"] == "download"]
        assert (
            download["description_localizations"]["de"] == "Ein Video oder seinen Ton von einem Link laden."
        )
        assert download["description_localizations"]["ru"] == "Скачать видео или его звук по ссылке."

        hans = fake.make_user("hans")
        assert await answer(fake, "cancel", user=hans, locale="de") == "Du hast keine laufenden Downloads."
        # Someone else's English app at the same time: English.
        assert await answer(fake, "cancel", locale="en-US") == "You have no downloads running."

        it = await fake.slash("download", {"url": clip(media_site)}, user=hans, locale="de")
        final = await env.final(it)
        words = "\n".join(str((c.json or {}).get("content")) for c in fake.edits(it.token))
        assert "Queued" not in words and "Downloading" not in words and "Starting" not in words
        assert final.json["content"].startswith("**")

        # /language: Persian from now on, whatever the app says; an unknown code keeps it and says so.
        assert await answer(fake, "language", {"language": "fa"}, user=hans, locale="de") == (
            "از این پس فارسی حرف می‌زنم."
        )
        assert await answer(fake, "cancel", user=hans, locale="de") == "دانلودی در جریان ندارید."
        note = await answer(fake, "language", {"language": "xx"}, user=hans, locale="de")
        assert note.startswith("I don't speak xx yet, so I'll stay with English.")
        assert (await env.services.prefs.get("discord", hans["id"])).language == "fa"
        assert await answer(fake, "language", {"language": "auto"}, user=hans, locale="de") == (
            "Ich spreche die Sprache deiner Discord-App."
        )


def test_command_descriptions_fit_discords_100_characters_in_every_language() -> None:
    from bots.discord.language import DESCRIPTIONS
    from core.i18n import LOCALES, translate_in

    extra = ("The language I speak to you", "A language code (de, pt-BR, fa...), or auto for your app's")
    too_long = [
        (locale, text)
        for locale in LOCALES
        for text in (*DESCRIPTIONS, *extra)
        if len(translate_in(locale, text)) > 100
    ]
    assert too_long == []
