"""The language the bot speaks to each person on Discord: their pick (/language), else their app's
(`interaction.locale`); and the commands' descriptions in the languages Discord shows them in."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bots.discord import texts
from core.i18n import ENGLISH, LOCALES, N_, negotiate, ready, set_locale, supported, translate_in, use

if TYPE_CHECKING:
    from core.bootstrap import Services

log = logging.getLogger(__name__)

SOURCE = "discord"
TTL_S = 60.0  # another process's /language reaches this one within a minute
_picked: dict[str, tuple[float, str | None]] = {}


async def speak(interaction: discord.Interaction) -> str:
    """Speak the person's language from here on in this interaction's context; the locale it chose."""
    key = str(interaction.user.id)
    cached = _picked.get(key)
    if cached is None or cached[0] < time.monotonic():
        services: Services | None = getattr(interaction.client, "services", None)
        picked = None
        if services is not None:
            try:
                picked = (await services.prefs.get(SOURCE, key)).language
            except Exception:  # noqa: BLE001 - the database down must not silence the bot: the app's language
                log.warning("discord: language of user %s not read", key, exc_info=True)
        cached = _picked[key] = (time.monotonic() + TTL_S, picked)
    locale = await ready(negotiate(cached[1], interaction.locale.value if interaction.locale else None))
    set_locale(locale)
    return locale


class Languages(commands.Cog):
    """/language: the language the bot speaks to you."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @app_commands.command(name="language", description=N_("The language I speak to you"))
    @app_commands.describe(language=N_("A language code (de, pt-BR, fa...), or auto for your app's"))
    async def language(self, interaction: discord.Interaction, language: str) -> None:
        code = language.strip()
        locale = None if code.lower() == "auto" else supported(code)
        if locale is None and code.lower() != "auto":
            with use(ENGLISH):
                await interaction.response.send_message(texts.language_unknown(code[:16]), ephemeral=True)
            return
        await self.services.prefs.set(SOURCE, str(interaction.user.id), language=locale or "")
        if locale:
            await ready(locale)
        _picked[str(interaction.user.id)] = (time.monotonic() + TTL_S, locale)
        set_locale(locale or (interaction.locale.value if interaction.locale else None))
        await interaction.response.send_message(texts.language_saved(locale), ephemeral=True)


# The commands' descriptions, as written in the cogs, so the catalogs hold them (Translator reads them back).
DESCRIPTIONS = (
    N_("Download a video or its audio from a link."),
    N_("Cancel your downloads that are still running."),
    N_("A link to a page with a video or a song"),
    N_("The video (default) or only its audio"),
    N_("The highest video height (default: best available)"),
    N_("Subtitle languages, comma-separated (e.g. en,de): embedded in the video and attached"),
    N_("Pick one of the link's formats (with their sizes) from a menu first"),
    N_("Only a part: where it starts (1:20, or seconds)"),
    N_("Only a part: where it ends (1:45, or seconds)"),
    N_("Each chapter as a file of its own"),
    N_("Sponsor, self-promotion and intro segments: remove them, or mark them as chapters"),
    N_("Post every new video of a channel or playlist here."),
    N_("What this channel follows."),
    N_("Stop following a channel or playlist here."),
    N_("A channel or playlist link: each new video is posted in this channel"),
    N_("The videos (default) or only their audio"),
    N_("The number /subscriptions shows"),
    # The operator's commands (bots/discord/admin.py).
    N_("Operator: requests, downloads and failures, today and over 7 days."),
    N_("Operator: what runs and waits, by site."),
    N_("Operator: stop someone from using the bot."),
    N_("Operator: let someone use the bot again."),
    N_("Operator: raise or lower one person's downloads per hour."),
    N_("The person's id or mention"),
    N_("Shown to them with the refusal"),
    N_("Downloads they may start per hour; leave out to see it, 0 for the usual limit"),
)


class Translator(app_commands.Translator):
    """Command names stay English (people type them); descriptions follow the app's language."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContext[Any, Any],
    ) -> str | None:
        if context.location not in (
            app_commands.TranslationContextLocation.command_description,
            app_commands.TranslationContextLocation.parameter_description,
        ):
            return None
        ours = supported(locale.value)
        if ours is None or ours == ENGLISH or ours not in LOCALES:
            return None
        found = translate_in(ours, string.message)
        return found if found != string.message else None
