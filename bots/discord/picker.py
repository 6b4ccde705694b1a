"""The format picker: a select menu of the real formats a link offers, each labelled with its size.

The bot keeps no memory of the question. The menu's custom_id carries the subtitle languages asked for, each
option's value the format's kind and id, and the picker's message text ends with the link; the client
registers the menu as a dynamic item, so a picker sent before a restart still works after it. A choice
submits the download with that format_id and the message becomes the download's reply.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import discord

from bots.discord.handling import handler
from bots.discord.language import speak
from bots.discord.texts import link_of_picker, starting_text
from core.errors import InvalidRequest
from core.i18n import N_, _
from core.jobs.formats import FormatChoice, MediaFormats

log = logging.getLogger(__name__)

PREFIX = "mediabot:fmt:"
MAX_OPTIONS = 25  # Discord's limits for a select menu
MAX_TEXT = 100  # labels, values, descriptions and custom_ids
VALUE = re.compile(r"^(?P<kind>[va]):(?P<format_id>.+)$")


def custom_id(subtitles: Sequence[str]) -> str:
    """The menu's custom_id; InvalidRequest when the languages make it longer than Discord allows."""
    value = PREFIX + ",".join(subtitles)
    if len(value) > MAX_TEXT:
        raise InvalidRequest(
            N_("That is too many subtitle languages to choose a format with; ask for fewer.")
        )
    return value


def options(found: MediaFormats) -> list[discord.SelectOption]:
    """One option per real format (best first), at most 25; formats whose id does not fit a value are left
    out (yt-dlp ids are short; a site's odd one should not break the menu)."""
    out: list[discord.SelectOption] = []
    seen: set[str] = set()
    for choice in found.formats:
        value = f"{'a' if choice.kind == 'audio' else 'v'}:{choice.format_id}"
        if len(value) > MAX_TEXT or value in seen:
            log.info("discord: format %r does not fit a select option; not offered", choice.format_id)
            continue
        seen.add(value)
        out.append(
            discord.SelectOption(label=_cut(choice.label), value=value, description=_description(choice))
        )
        if len(out) == MAX_OPTIONS:
            break
    return out


def _description(choice: FormatChoice) -> str | None:
    notes = []
    if choice.kind == "video" and not choice.has_audio:
        notes.append("the best audio is merged in")
    if choice.filesize is not None and choice.filesize_estimated:
        notes.append("size estimated from the bitrate")
    return _cut("; ".join(notes)).capitalize() if notes else None


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def parse_custom_id(value: str) -> tuple[str, ...]:
    langs = value.removeprefix(PREFIX)
    return tuple(lang for lang in langs.split(",") if lang)


class FormatSelect(
    discord.ui.DynamicItem[discord.ui.Select[Any]], template=r"mediabot:fmt:(?P<subs>[A-Za-z0-9,\-]*)"
):
    def __init__(self, subtitles: Sequence[str], choices: list[discord.SelectOption] | None = None) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=custom_id(subtitles),
                placeholder=_("Choose a format"),
                min_values=1,
                max_values=1,
                options=choices or [],
            )  # fmt: skip
        )
        self.subtitles = tuple(subtitles)

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Select[Any], match: re.Match[str], /
    ) -> FormatSelect:
        return cls(parse_custom_id(match.group(0)), list(item.options))

    async def callback(self, interaction: discord.Interaction) -> None:
        await speak(interaction)
        message = interaction.message
        asker = message.interaction_metadata.user if message and message.interaction_metadata else None
        if asker is not None and asker.id != interaction.user.id:
            await interaction.response.send_message(
                _("Only the person who asked can choose the format."), ephemeral=True
            )
            return
        url = link_of_picker(message.content) if message else None
        match = VALUE.match(self.item.values[0]) if self.item.values else None
        if url is None or match is None:
            await interaction.response.send_message(
                _("This menu no longer works; use /download again."), ephemeral=True
            )
            return
        chosen = next(
            (o.label for o in self.item.options if o.value == self.item.values[0]), match["format_id"]
        )
        await interaction.response.edit_message(
            content=starting_text(message.content if message else "", chosen), view=None
        )
        await handler(interaction).format_chosen(
            interaction, url=url, kind="audio" if match["kind"] == "a" else "video", format_id=match["format_id"],
            subtitles=self.subtitles, message_id=message.id if message else None,
        )  # fmt: skip


def picker_view(subtitles: Sequence[str], choices: list[discord.SelectOption]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(FormatSelect(subtitles, choices))
    return view
