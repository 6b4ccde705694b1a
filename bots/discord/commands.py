"""The application commands (`/download`, "Download media", `/cancel`) and the Cancel button's handler.

`/download` takes subtitle languages, and with `choose_format` answers with a menu of the link's formats
(bots/discord/picker.py) instead of downloading at once."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands

from bots.discord import picker
from bots.discord.delivery import Target
from bots.discord.submitting import SOURCE, bot_of, submit_and_follow
from bots.discord.texts import picker_text
from core.errors import MediabotError, NotFound
from core.jobs import check_choices
from core.schemas import RequestView
from core.urls import extract_url, extract_urls

if TYPE_CHECKING:
    from bots.discord.client import MediaBot

log = logging.getLogger(__name__)

_bot = bot_of


@app_commands.command(name="download")
@app_commands.describe(
    url="A link to a page with a video or a song",
    kind="The video (default) or only its audio",
    quality="The highest video height (default: best available)",
    subtitles="Subtitle languages, comma-separated (e.g. en,de): embedded in the video and attached",
    choose_format="Pick one of the link's formats (with their sizes) from a menu first",
)
async def download(
    interaction: discord.Interaction,
    url: str,
    kind: Literal["video", "audio"] = "video",
    quality: Literal["best", "1080", "720", "480"] = "best",
    subtitles: str | None = None,
    choose_format: bool = False,
) -> None:
    """Download a video or its audio from a link."""
    await start_download(interaction, url, kind, quality, subtitles=subtitles, choose_format=choose_format)


@app_commands.context_menu(name="Download media")
async def download_message(interaction: discord.Interaction, message: discord.Message) -> None:
    text = "\n".join([message.content, *(embed.url for embed in message.embeds if embed.url)])
    urls = extract_urls(text)
    if not urls:
        await interaction.response.send_message("That message has no link in it.", ephemeral=True)
        return
    await start_download(interaction, urls[0], "video", "best")


@app_commands.command(name="cancel")
async def cancel(interaction: discord.Interaction) -> None:
    """Cancel your downloads that are still running."""
    bot = _bot(interaction)
    jobs = bot.services.jobs
    user_id = str(interaction.user.id)
    # A playlist item or a copy being made is cancelled through the request it was made for (whose
    # reply shows it), and cancelling that one cancels all of its items.
    roots: dict[str, None] = {}
    for request, _ in await jobs.active_requests(SOURCE, user_id):
        roots.setdefault(await _root(bot, request))
    cancelled = []
    for root in roots:
        try:
            view = await jobs.cancel(root, source=SOURCE, user_id=user_id)
        except NotFound:
            continue
        # Done but not delivered yet (a copy that fits or a playlist's items on their way): stopped too.
        if view.status == "cancelled" or view.delivered_at is None:
            cancelled.append(await jobs.get_request(root))
    if not cancelled:
        text = "You have no downloads running."
    else:
        text = "Cancelled 1 download." if len(cancelled) == 1 else f"Cancelled {len(cancelled)} downloads."
    await interaction.response.send_message(text, ephemeral=True)
    for request, job in cancelled:
        await bot.deliveries.show_cancelled(request, job)


async def _root(bot: MediaBot, request: RequestView) -> str:
    """The id of the request a person made that `request` belongs to (itself, a playlist, a file)."""
    for _ in range(3):
        if request.parent_id is None:
            break
        request, _job = await bot.services.jobs.get_request(request.parent_id)
    return request.id


async def start_download(
    interaction: discord.Interaction,
    text: str,
    kind: str,
    quality: str,
    *,
    subtitles: str | None = None,
    choose_format: bool = False,
) -> None:
    bot = _bot(interaction)
    try:
        # Checked before deferring because it needs no I/O, so a mistyped link gets an ephemeral answer.
        url = extract_url(text)
        _, langs = check_choices(None, split_languages(subtitles))
        menu_id = picker.custom_id(langs) if choose_format else None
    except MediabotError as exc:
        await interaction.response.send_message(exc.message, ephemeral=True)
        return
    callback = await interaction.response.defer(thinking=True)
    if menu_id is not None and await offer_formats(interaction, url, langs):
        return
    target = Target.from_interaction(
        interaction,
        ttl_s=bot.settings.discord_interaction_ttl_s,
        message_id=callback.message_id if callback else None,
    )
    await submit_and_follow(interaction, target, url=url, kind=kind, quality=quality, subtitles=langs)


def split_languages(text: str | None) -> tuple[str, ...]:
    """ "en, de" or "en de" as ("en", "de")."""
    return tuple(lang for lang in re.split(r"[\s,;]+", text or "") if lang)


async def offer_formats(interaction: discord.Interaction, url: str, langs: tuple[str, ...]) -> bool:
    """Answer with the format picker; False when the link offers nothing to choose between (a playlist, whose
    items pick their own; a single format), so it is downloaded as usual."""
    bot = _bot(interaction)
    try:
        found = await bot.services.jobs.formats(url)
    except MediabotError as exc:
        await interaction.edit_original_response(content=exc.message)
        return True
    choices = picker.options(found)
    if found.playlist is not None or len(choices) < 2:
        return False
    await interaction.edit_original_response(
        content=picker_text(found.title, url, found.duration), view=picker.picker_view(langs, choices)
    )
    return True


def register(tree: app_commands.CommandTree[discord.Client]) -> None:
    for command in (download, download_message, cancel):
        tree.add_command(command)
