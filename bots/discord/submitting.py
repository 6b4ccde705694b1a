"""Starting a download for an interaction: the per-person limits, the submit, then following it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import discord

from bots.discord.delivery import Target
from core.errors import MediabotError, human_duration
from core.schemas import SubmitRequest

if TYPE_CHECKING:
    from bots.discord.client import MediaBot

log = logging.getLogger(__name__)

SOURCE = "discord"
HOUR_S = 3600


class LimitReached(MediabotError):
    code = "rate_limited"
    default_message = "You have started too many downloads. Please wait a little."


def bot_of(interaction: discord.Interaction) -> MediaBot:
    return cast("MediaBot", interaction.client)


async def submit_and_follow(
    interaction: discord.Interaction,
    target: Target,
    *,
    url: str,
    kind: str,
    quality: str = "best",
    format_id: str | None = None,
    subtitles: tuple[str, ...] = (),
) -> None:
    """Submit the download whose reply `target` names and follow it; a refusal is said in that reply.
    The interaction has been answered (deferred, or its message updated) already."""
    bot = bot_of(interaction)
    user_id = str(interaction.user.id)
    try:
        await check_limits(bot, user_id)
        submission = await bot.services.jobs.submit(
            SubmitRequest(
                text=url, source=SOURCE, user_id=user_id, kind=kind,  # type: ignore[arg-type]
                quality=quality, target=target.to_dict(), format_id=format_id, subtitles=subtitles,
                # Discord's iPhone app, like Telegram's, plays H.264 only.
                playable=bot.settings.chat_playable,
            )
        )  # fmt: skip
    except MediabotError as exc:
        await interaction.edit_original_response(content=exc.message, view=None)
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
