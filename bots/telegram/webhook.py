"""Webhook mode: Telegram POSTs each update to MEDIABOT_TELEGRAM_WEBHOOK_URL; a small aiohttp listener behind
the operator's HTTPS proxy hands it to the application's update queue (PTB's own `start_webhook` needs
tornado, which we do not ship)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from core.config import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024


def webhook_secret(token: str) -> str:
    """The secret Telegram sends back with every call: derived from the token, so every bot process and every
    restart agree on it without another setting (and it reveals nothing about the token)."""
    return hmac.new(token.encode(), b"mediabot telegram webhook", hashlib.sha256).hexdigest()[:48]


@contextlib.asynccontextmanager
async def serving_webhook(
    app: Application[Any, Any, Any, Any, Any, Any], settings: Settings, allowed_updates: list[str]
) -> AsyncIterator[None]:
    assert settings.telegram_webhook_url and settings.telegram_token
    secret = webhook_secret(settings.telegram_token)
    path = urlsplit(settings.telegram_webhook_url).path or "/"

    async def receive(request: web.Request) -> web.Response:
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, ""), secret):
            return web.Response(status=403, text="forbidden\n")
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, app.bot)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("telegram webhook: ignoring a malformed update (%s)", type(exc).__name__)
            return web.Response(status=400, text="bad update\n")
        await app.update_queue.put(update)
        return web.Response(text="ok\n")

    listener = web.Application(client_max_size=MAX_UPDATE_BYTES)
    listener.router.add_post(path, receive)
    runner = web.AppRunner(listener, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.telegram_webhook_listen, settings.telegram_webhook_port)
        await site.start()
        await app.bot.set_webhook(
            settings.telegram_webhook_url, secret_token=secret, allowed_updates=allowed_updates
        )
        log.info(
            "telegram webhook: %s -> %s:%d%s",
            settings.telegram_webhook_url, settings.telegram_webhook_listen, settings.telegram_webhook_port, path,
        )  # fmt: skip
        yield
    finally:
        # The webhook stays registered: Telegram keeps updates for us while we are away.
        await runner.cleanup()
