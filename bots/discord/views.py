"""The Cancel button. Its custom_id carries the request id and the client registers the class as a dynamic
item, so a button sent before a restart still works after it."""

from __future__ import annotations

import re
from typing import Any

import discord

from bots.discord.handling import handler
from bots.discord.language import speak
from core.i18n import _

CUSTOM_ID = "mediabot:cancel:{request_id}"


class CancelButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"mediabot:cancel:(?P<request_id>[0-9a-f]{32})"
):
    def __init__(self, request_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=_("Cancel"),
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
        await speak(interaction)
        await handler(interaction).cancel_pressed(interaction, self.request_id)


def cancel_view(request_id: str) -> discord.ui.View:
    """A view holding only the dynamic Cancel button: the client dispatches it, nothing is stored per message."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(request_id))
    return view
