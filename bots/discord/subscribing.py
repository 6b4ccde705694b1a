"""`/subscribe`, `/subscriptions`, `/unsubscribe`: channels and playlists followed into a Discord channel.
New entries are posted in that channel (bots.subscriptions delivers them: no interaction answers them)."""

from __future__ import annotations

import logging
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bots.discord.target import Target
from core.bootstrap import Services
from core.errors import MediabotError
from core.i18n import N_, _, ngettext, use
from core.subscriptions.service import SubscribeRequest, SubscriptionView

log = logging.getLogger(__name__)

SOURCE = "discord"
NONE_HERE = N_("Nothing is followed in this channel. Use /subscribe with a channel or playlist link.")
MAX_LISTED = 25


def place_of(channel_id: int | str) -> str:
    return f"{SOURCE}:{channel_id}"


def name_of(sub: SubscriptionView) -> str:
    return sub.title or sub.url


def listing(subs: list[SubscriptionView]) -> str:
    lines = [_("Followed in this channel:")]
    for n, sub in enumerate(subs[:MAX_LISTED], 1):
        kind = " · " + _("audio") if sub.kind == "audio" else ""
        state = " · " + _("paused (subscribe again to resume)") if sub.paused else ""
        lines.append(
            f"{n}. <{name_of(sub)}>{kind}{state}" if not sub.title else f"{n}. {sub.title}{kind}{state}"
        )
    lines.append(_("Stop one with /unsubscribe and its number."))
    return "\n".join(lines)


def paused_text(sub: SubscriptionView) -> str:
    why = f" ({sub.last_error})" if sub.last_error else ""
    return ngettext(
        "Following {name} is paused: it could not be read {n} time in a row{why}. Use /subscribe with its "
        "link to try again.",
        "Following {name} is paused: it could not be read {n} times in a row{why}. Use /subscribe with its "
        "link to try again.",
        sub.failures,
    ).format(name=name_of(sub), n=sub.failures, why=why)


class Subscriptions(commands.Cog, name="Subscriptions"):
    def __init__(self, bot: commands.Bot, services: Services) -> None:
        self.bot = bot
        self.services = services

    @app_commands.command(name="subscribe")
    @app_commands.describe(
        url="A channel or playlist link: each new video is posted in this channel",
        kind="The videos (default) or only their audio",
    )
    async def subscribe(
        self, interaction: discord.Interaction, url: str, kind: Literal["video", "audio"] = "video"
    ) -> None:
        """Post every new video of a channel or playlist here."""
        if interaction.channel_id is None:
            await interaction.response.send_message(_("Use /subscribe in a channel."), ephemeral=True)
            return
        # No interaction answers the entries: the target only names the channel (and who asked, mentioned).
        target = Target.from_interaction(interaction, ttl_s=0, message_id=None)
        await interaction.response.defer(thinking=True)
        try:
            sub, created = await self.services.subscriptions.subscribe(
                SubscribeRequest(
                    text=url, source=SOURCE, user_id=str(interaction.user.id),
                    place=place_of(interaction.channel_id), kind=kind, target=target.to_dict(),
                )
            )  # fmt: skip
        except MediabotError as exc:
            await interaction.edit_original_response(content=_(exc.message))
            return
        if not created:
            text = _("This channel already follows {name}.").format(name=name_of(sub))
        elif sub.kind == "audio":
            text = _("Subscribed: the sound of every new video of {url} will be posted here.").format(
                url=f"<{sub.url}>"
            )
        else:
            text = _("Subscribed: every new video of {url} will be posted here.").format(url=f"<{sub.url}>")
        await interaction.edit_original_response(content=text)

    @app_commands.command(name="subscriptions")
    async def subscriptions(self, interaction: discord.Interaction) -> None:
        """What this channel follows."""
        subs = await self._here(interaction)
        await interaction.response.send_message(listing(subs) if subs else _(NONE_HERE), ephemeral=True)

    @app_commands.command(name="unsubscribe")
    @app_commands.describe(number="The number /subscriptions shows")
    async def unsubscribe(self, interaction: discord.Interaction, number: int) -> None:
        """Stop following a channel or playlist here."""
        subs = await self._here(interaction)
        if not subs:
            await interaction.response.send_message(_(NONE_HERE), ephemeral=True)
            return
        if not 1 <= number <= len(subs):
            await interaction.response.send_message(listing(subs), ephemeral=True)
            return
        sub = subs[number - 1]
        await self.services.subscriptions.unsubscribe(
            sub.id, source=SOURCE, place=place_of(interaction.channel_id or "")
        )
        await interaction.response.send_message(_("Unsubscribed from {name}.").format(name=name_of(sub)))

    async def _here(self, interaction: discord.Interaction) -> list[SubscriptionView]:
        if interaction.channel_id is None:
            return []
        return await self.services.subscriptions.list(source=SOURCE, place=place_of(interaction.channel_id))

    async def tell(self, sub: SubscriptionView) -> None:
        """A paused subscription's channel hears it once."""
        channel_id = sub.target.get("channel_id")
        if not channel_id:
            return
        channel = self.bot.get_partial_messageable(int(channel_id))
        with use(sub.target.get("locale")):  # the language of whoever subscribed
            text = paused_text(sub)
        await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
