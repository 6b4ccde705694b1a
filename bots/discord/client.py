"""The discord.py client: services injected through the constructor, the commands' cog added and the
commands synced in `setup_hook`, undelivered requests resumed."""

from __future__ import annotations

import logging
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands
from discord.gateway import DiscordWebSocket

from bots.conductor import Conductor
from bots.discord import texts
from bots.discord.admin import Operator
from bots.discord.cog import Downloads
from bots.discord.language import Languages, Translator, speak
from bots.discord.picker import FormatSelect
from bots.discord.reply import DiscordChat, DiscordReply
from bots.discord.subscribing import Subscriptions
from bots.discord.views import CancelButton
from bots.subscriptions import SubscribedDeliveries
from core.bootstrap import Services
from core.errors import MediabotError
from core.i18n import _

log = logging.getLogger(__name__)


class Tree(app_commands.CommandTree[discord.Client]):
    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Every command speaks the person's language (the command runs in this interaction's context); a banned
        person (core.admin, shared by every process) reads one sentence, whatever they ask."""
        await speak(interaction)
        services: Services | None = getattr(interaction.client, "services", None)
        if services is None:
            return True
        text = await services.admin.banned("discord", str(interaction.user.id))
        if text is None:
            return True
        await interaction.response.send_message(text, ephemeral=True)
        return False

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = getattr(error, "original", error)
        if isinstance(original, MediabotError):
            message = _(original.message)
        else:
            name = interaction.command.name if interaction.command else "?"
            log.error("Discord command %s failed", name, exc_info=original)
            message = texts.APOLOGY
        try:
            if interaction.response.is_done():
                await interaction.edit_original_response(content=message, view=None)
            else:
                await interaction.response.send_message(message, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not report a command error to Discord")


class MediaBot(commands.Bot):
    def __init__(
        self,
        services: Services,
        *,
        follow_gateway: bool = False,
        guild_ready_timeout: float = 2.0,
        edit_interval_s: float = 1.5,
        chat_interval_s: float = 0.5,
        **options: Any,
    ) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # not privileged; keeps guilds (and their upload limits) cached
        super().__init__(
            # Application commands only: no message content intent, no prefix commands, no help command.
            command_prefix=commands.when_mentioned, help_command=None, tree_cls=Tree, intents=intents,
            guild_ready_timeout=guild_ready_timeout, allowed_mentions=discord.AllowedMentions.none(), **options,
        )  # fmt: skip
        self.services = services
        self.settings = services.settings
        self.follow_gateway = follow_gateway
        self.chat = DiscordChat(
            self, services, edit_interval_s=edit_interval_s, chat_interval_s=chat_interval_s
        )
        self.conductor: Conductor[DiscordReply] = Conductor(services, self.chat)
        self.following = Subscriptions(self, services)
        self.subscribed = SubscribedDeliveries(services, self.conductor, self.following.tell)

    async def setup_hook(self) -> None:
        if self.follow_gateway:
            await self.use_server_gateway()
        await self.add_cog(Downloads(self, self.services, self.chat, self.conductor))
        await self.add_cog(self.following)
        if self.settings.discord_admins:
            # Issue 24: /stats, /ban, /limits... synced only when someone may use them.
            await self.add_cog(Operator(self.services))
        await self.add_cog(Languages(self.services))
        await self.tree.set_translator(Translator())
        self.add_dynamic_items(CancelButton, FormatSelect)
        await self.sync_commands()
        try:
            await self.conductor.resume()
        except Exception:  # noqa: BLE001 - the bot still serves new commands; the next start resumes again
            log.exception("could not resume Discord deliveries")
        self.subscribed.start()

    async def use_server_gateway(self) -> None:
        """Connect to the gateway that the configured API server names (a Discord-compatible server, a test's
        fake); a REST-only proxy that does not answer `/gateway/bot` leaves Discord's gateway in place."""
        try:
            _, url, _ = await self.http.get_bot_gateway()
        except discord.GatewayNotFound:
            log.warning("the Discord API server names no gateway; using %s", DiscordWebSocket.DEFAULT_GATEWAY)
            return
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)

    async def sync_commands(self) -> None:
        """Bulk-overwrite the commands: in the configured guilds (visible at once), else globally."""
        try:
            if self.settings.discord_guild_ids:
                for guild_id in self.settings.discord_guild_ids:
                    guild = discord.Object(int(guild_id))
                    self.tree.copy_global_to(guild=guild)
                    synced = await self.tree.sync(guild=guild)
                    log.info("synced %d Discord commands to guild %s", len(synced), guild_id)
            else:
                synced = await self.tree.sync()
                log.info("synced %d Discord commands globally", len(synced))
        except discord.HTTPException as exc:
            log.error("could not sync Discord commands (%s %s); the previous ones stay", exc.status, exc.code)

    async def on_ready(self) -> None:
        log.info("Discord bot connected as %s (%d guilds)", self.user, len(self.guilds))

    async def close(self) -> None:
        await self.subscribed.close()
        await self.conductor.close()
        await super().close()
