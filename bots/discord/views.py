"""The Cancel button. Its custom_id carries the request id and the client registers the class as a dynamic
item, so a button sent before a restart still works after it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

import discord

from core.errors import MediabotError, NotFound

if TYPE_CHECKING:
    from bots.discord.client import MediaBot

CUSTOM_ID = "mediabot:cancel:{request_id}"


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"mediabot:cancel:(?P<request_id>[0-9a-f]{32})"
):
    def __init__(self, request_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Cancel",
                style=discord.ButtonStyle.secondary,
                custom_id=CUSTOM_ID.format(request_id=request_id),
            )
        )
        self.request_id = request_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> CancelButton:
        return cls(match["request_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        bot = cast("MediaBot", interaction.client)
        jobs = bot.services.jobs
        try:
            request = await jobs.cancel(self.request_id, source="discord", user_id=str(interaction.user.id))
        except NotFound:
            await interaction.response.send_message(
                "Only the person who started this download can cancel it.", ephemeral=True
            )
            return
        except MediabotError as exc:
            await interaction.response.send_message(exc.message, ephemeral=True)
            return
        # A finished download may still be on its way: a copy that fits being made, a playlist's items
        # being posted (cancel() stopped the items still downloading). Cancelling stops that too.
        if request.status != "cancelled" and request.delivered_at is not None:
            await interaction.response.send_message("This download has already finished.", ephemeral=True)
            return
        # Stop our progress edits first, so none lands after the "Cancelled" below.
        await bot.deliveries.stop(self.request_id)
        request, job = await jobs.get_request(self.request_id)
        await interaction.response.edit_message(
            content=await bot.deliveries.cancelled_content(request, job), view=None
        )
        await jobs.mark_delivered(self.request_id)


def cancel_view(request_id: str) -> discord.ui.View:
    """A view holding only the dynamic Cancel button: the client dispatches it, nothing is stored per message."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(request_id))
    return view
