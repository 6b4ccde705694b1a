"""The application commands (`/download`, "Download media", `/cancel`) and the Cancel button's handler."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal, cast

import discord
from discord import app_commands

from bots.discord.delivery import Target
from core.errors import MediabotError, NotFound, human_duration
from core.schemas import RequestView, SubmitRequest
from core.urls import extract_url, extract_urls

if TYPE_CHECKING:
    from bots.discord.client import MediaBot

log = logging.getLogger(__name__)

SOURCE = "discord"
HOUR_S = 3600


class LimitReached(MediabotError):
    code = "rate_limited"
    default_message = "You have started too many downloads. Please wait a little."


def _bot(interaction: discord.Interaction) -> MediaBot:
    return cast("MediaBot", interaction.client)


@app_commands.command(name="download")
@app_commands.describe(
    url="A link to a page with a video or a song",
    kind="The video (default) or only its audio",
    quality="The highest video height (default: best available)",
)
async def download(
    interaction: discord.Interaction,
    url: str,
    kind: Literal["video", "audio"] = "video",
    quality: Literal["best", "1080", "720", "480"] = "best",
) -> None:
    """Download a video or its audio from a link."""
    await start_download(interaction, url, kind, quality)


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


async def start_download(interaction: discord.Interaction, text: str, kind: str, quality: str) -> None:
    bot = _bot(interaction)
    try:
        # Checked before deferring because it needs no I/O, so a mistyped link gets an ephemeral answer.
        url = extract_url(text)
    except MediabotError as exc:
        await interaction.response.send_message(exc.message, ephemeral=True)
        return
    callback = await interaction.response.defer(thinking=True)
    target = Target.from_interaction(
        interaction,
        ttl_s=bot.settings.discord_interaction_ttl_s,
        message_id=callback.message_id if callback else None,
    )
    user_id = str(interaction.user.id)
    try:
        await check_limits(bot, user_id)
        submission = await bot.services.jobs.submit(
            SubmitRequest(
                text=url, source=SOURCE, user_id=user_id, kind=kind,  # type: ignore[arg-type]
                quality=quality, target=target.to_dict(),
            )
        )  # fmt: skip
    except MediabotError as exc:
        await interaction.edit_original_response(content=exc.message)
        return
    log.info(
        "discord request %s (%s) for job %s", submission.request.id, submission.outcome, submission.job.id
    )
    bot.deliveries.follow(submission.request, submission.job)


async def check_limits(bot: MediaBot, user_id: str) -> None:
    settings = bot.settings
    running = await bot.services.jobs.count_active(SOURCE, user_id)
    if running >= settings.user_max_concurrent:
        raise LimitReached(
            f"You already have {running} {'download' if running == 1 else 'downloads'} running. "
            "Wait for one to finish, or use /cancel."
        )
    allowed, retry_after = await bot.services.limits.hit(
        f"{SOURCE}:user:{user_id}", settings.user_requests_per_hour, HOUR_S
    )
    if not allowed:
        raise LimitReached(
            f"You can start {settings.user_requests_per_hour} downloads per hour. "
            f"Try again in {human_duration(max(1.0, retry_after))}."
        )


def register(tree: app_commands.CommandTree[discord.Client]) -> None:
    for command in (download, download_message, cancel):
        tree.add_command(command)
