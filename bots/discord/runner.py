"""Running the Discord bot inside the process's event loop, next to the web app and the worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import discord
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bots.discord.client import MediaBot
from core.aio import spawn
from core.logs import install_redaction

if TYPE_CHECKING:
    from core.bootstrap import Services

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://discord.com/api/v10"
STOP_TIMEOUT_S = 10.0
# discord.py logs interaction tokens: in webhook and callback URLs, and in gateway payloads at DEBUG.
# Bot tokens (base64 id . timestamp . hmac) are redacted wherever they appear.
REDACT_PATTERNS = (
    r"(?:webhooks|interactions)/\d+/[A-Za-z0-9_.\-]{20,}",
    r"""["']token["']\s*:\s*["'][^"']{20,}["']""",
    r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}\b",
)


@contextlib.asynccontextmanager
async def running(services: Services, **options: Any) -> AsyncIterator[MediaBot]:
    """The bot, started as a supervised task; closed on exit. `options` go to `MediaBot`."""
    settings = services.settings
    token = (settings.discord_token or "").strip()
    if not token:
        raise ValueError("MEDIABOT_DISCORD_TOKEN is not set")
    redactor = install_redaction([token])
    for pattern in REDACT_PATTERNS:
        redactor.add_pattern(pattern)

    api_url = settings.discord_api_url.rstrip("/")
    saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    custom = api_url != DEFAULT_API_URL
    if custom:
        Route.BASE = api_url
    bot = MediaBot(services, follow_gateway=custom, **options)
    task = spawn(_run(bot, token), name="discord-bot")
    try:
        yield bot
    finally:
        await bot.close()
        try:
            await asyncio.wait_for(task, STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("the Discord bot did not stop within %.0f s", STOP_TIMEOUT_S)
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


async def _run(bot: MediaBot, token: str) -> None:
    try:
        await bot.start(token)
    except discord.LoginFailure:
        log.error("Discord refused the bot token (MEDIABOT_DISCORD_TOKEN); the Discord bot is not running")
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - the other components of the process keep running
        log.exception("the Discord bot stopped")
    else:
        log.info("Discord bot stopped")
