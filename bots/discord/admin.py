"""The operator's slash commands in Discord (issue 24 item 4): /stats, /ban, /unban, /limits, /queue, for the
ids in MEDIABOT_DISCORD_ADMINS. Anyone else is answered as if the command did not exist."""

from __future__ import annotations

import logging
import re

import discord
from discord import app_commands
from discord.ext import commands

from core.admin import texts as admin_texts
from core.bootstrap import Services
from core.errors import InvalidRequest, MediabotError
from core.i18n import N_, _

log = logging.getLogger(__name__)

SOURCE = "discord"
UNKNOWN_COMMAND = N_("I don't know that command.")
# A Discord id, or a mention of one (<@123>, <@!123>).
_USER = re.compile(r"<@!?(\d+)>|(\d+)")
MAX_MESSAGE = 2000


def user_id_of(text: str) -> str:
    found = _USER.fullmatch(text.strip())
    if found is None:
        raise InvalidRequest(admin_texts.BAD_USER_ID)
    return found.group(1) or found.group(2)


class Operator(commands.Cog, name="Operator"):
    def __init__(self, services: Services) -> None:
        self.admin = services.admin
        self.admins = set(services.settings.discord_admins)

    async def _allowed(self, interaction: discord.Interaction) -> bool:
        if str(interaction.user.id) in self.admins:
            return True
        await interaction.response.send_message(_(UNKNOWN_COMMAND), ephemeral=True)
        return False

    async def _say(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(text[:MAX_MESSAGE], ephemeral=True)

    @app_commands.command(name="stats")
    async def stats(self, interaction: discord.Interaction) -> None:
        """Operator: requests, downloads and failures, today and over 7 days."""
        if await self._allowed(interaction):
            await self._say(interaction, admin_texts.stats_text(await self.admin.stats()))

    @app_commands.command(name="queue")
    async def queue(self, interaction: discord.Interaction) -> None:
        """Operator: what runs and waits, by site."""
        if await self._allowed(interaction):
            await self._say(interaction, admin_texts.queue_text(await self.admin.queue()))

    @app_commands.command(name="ban")
    @app_commands.describe(user="The person's id or mention", reason="Shown to them with the refusal")
    async def ban(self, interaction: discord.Interaction, user: str, reason: str | None = None) -> None:
        """Operator: stop someone from using the bot."""
        if not await self._allowed(interaction):
            return
        me = str(interaction.user.id)
        try:
            ban = await self.admin.ban(
                SOURCE, user_id_of(user), reason=reason, by=f"{SOURCE}:{me}", by_user=(SOURCE, me)
            )
        except MediabotError as exc:
            await self._say(interaction, _(exc.message))
            return
        await self._say(interaction, admin_texts.ban_done(ban.user_id, ban.reason))

    @app_commands.command(name="unban")
    @app_commands.describe(user="The person's id or mention")
    async def unban(self, interaction: discord.Interaction, user: str) -> None:
        """Operator: let someone use the bot again."""
        if not await self._allowed(interaction):
            return
        try:
            who = user_id_of(user)
            await self.admin.unban(SOURCE, who, by=f"{SOURCE}:{interaction.user.id}")
        except MediabotError as exc:
            await self._say(interaction, _(exc.message))
            return
        await self._say(interaction, admin_texts.unban_done(who))

    @app_commands.command(name="limits")
    @app_commands.describe(
        user="The person's id or mention",
        per_hour="Downloads they may start per hour; leave out to see it, 0 for the usual limit",
    )
    async def limits(self, interaction: discord.Interaction, user: str, per_hour: int | None = None) -> None:
        """Operator: raise or lower one person's downloads per hour."""
        if not await self._allowed(interaction):
            return
        try:
            who = user_id_of(user)
            if per_hour is None:
                quota = await self.admin.quota(SOURCE, who)
                await self._say(
                    interaction, admin_texts.limit_shown(who, quota.requests_per_hour, quota.overridden)
                )
                return
            by = f"{SOURCE}:{interaction.user.id}"
            quota = await self.admin.set_quota(SOURCE, who, per_hour or None, by=by)
        except MediabotError as exc:
            await self._say(interaction, _(exc.message))
            return
        await self._say(interaction, admin_texts.limit_done(who, quota.requests_per_hour, quota.overridden))
