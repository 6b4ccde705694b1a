"""How the bot's buttons and menus reach the cog that handles them. discord.py rebuilds a dynamic item from
a message's custom_id (so a button sent before a restart still works), which leaves the item nothing but the
interaction: it finds the cog through the client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

import discord
from discord.ext import commands

COG = "Downloads"


class Handles(Protocol):
    async def cancel_pressed(self, interaction: discord.Interaction, request_id: str) -> None:
        """The Cancel button under a reply was pressed."""
        ...

    async def format_chosen(
        self,
        interaction: discord.Interaction,
        *,
        url: str,
        kind: str,
        format_id: str,
        subtitles: Sequence[str],
        message_id: int | None,
    ) -> None:
        """A format was chosen in the picker on message `message_id` (already answered)."""
        ...


def handler(interaction: discord.Interaction) -> Handles:
    cog = cast(commands.Bot, interaction.client).get_cog(COG)
    if cog is None:
        raise RuntimeError(f"the {COG} cog is not loaded")
    return cast(Handles, cog)
