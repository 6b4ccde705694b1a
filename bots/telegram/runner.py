"""The Telegram bot's lifecycle inside an already running asyncio loop (`mediabot run` / `mediabot telegram`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from telegram import BotCommandScopeAllChatAdministrators
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ApplicationBuilder

from bots.conductor import Conductor
from bots.subscriptions import SubscribedDeliveries
from bots.telegram import texts
from bots.telegram.api import TelegramApi
from bots.telegram.handlers import Handlers
from bots.telegram.inline import InlineChat
from bots.telegram.reply import TelegramReply
from bots.telegram.webhook import serving_webhook
from core.bootstrap import Services
from core.config import Settings
from core.errors import MediabotError
from core.i18n import LOCALES, use
from core.logs import REDACTOR, install_redaction

log = logging.getLogger(__name__)

App = Application[Any, Any, Any, Any, Any, Any]

CONCURRENT_UPDATES = 64
POLL_TIMEOUT_S = 10
# inline_query and chosen_inline_result: inline mode (bots/telegram/inline.py)
ALLOWED_UPDATES = ["message", "callback_query", "channel_post", "inline_query", "chosen_inline_result"]


class TelegramUnavailable(MediabotError):
    """The bot could not start: a rejected token or an unreachable Bot API (`mediabot` prints the sentence)."""

    code = "telegram_unavailable"


def build_application(settings: Settings) -> App:
    assert settings.telegram_token, "MEDIABOT_TELEGRAM_TOKEN is not set"
    api = settings.telegram_api_url.rstrip("/")
    return (
        ApplicationBuilder()
        .token(settings.telegram_token)
        # no trailing slash: ".../bot/" makes every call a 404, reported as InvalidToken
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        # or a Cancel press waits until the handler of a running download returns
        .concurrent_updates(CONCURRENT_UPDATES)
        .read_timeout(15)
        .write_timeout(15)
        .job_queue(None)
        .build()
    )


@contextlib.asynccontextmanager
async def running(services: Services) -> AsyncIterator[App]:
    """Start the bot inside the running loop; on exit stop receiving, stop, shut down (that order)."""
    settings = services.settings
    # Request URLs carry the token (httpx logs them at INFO): redact it from every log record.
    install_redaction([settings.telegram_token or ""])
    app = build_application(settings)
    api = TelegramApi(services, app.bot)
    chat = InlineChat(api)  # answers in chats, and in inline messages
    conductor: Conductor[TelegramReply] = Conductor(services, chat)
    handlers = Handlers(services, api, chat, conductor)
    handlers.register(app)
    subscribed = SubscribedDeliveries(services, conductor, handlers.following.tell)
    await _initialize(app, settings)
    try:
        await app.start()
        async with _receiving(app, settings):
            # post_init does not fire on this path: our start-up work, explicitly.
            await _set_commands(app)
            await handlers.operator.set_commands(app)
            try:
                await conductor.resume()
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the bot from answering
                log.exception("telegram: could not resume undelivered requests")
            subscribed.start()
            log.info("telegram bot @%s running", app.bot.username)
            yield app
    finally:
        await subscribed.close()
        if app.running:
            await app.stop()
        await conductor.close()
        await handlers.submit.pickers.close()
        await app.shutdown()
        log.info("telegram bot stopped")


async def _initialize(app: App, settings: Settings) -> None:
    """getMe: a wrong token or an unreachable server fails here, as one sentence without the token."""
    try:
        await app.initialize()
    except TelegramError as exc:
        with contextlib.suppress(Exception):
            await app.bot.shutdown()  # the HTTP clients it opened
        if isinstance(exc, InvalidToken):
            # PTB's message quotes the token; `from None` keeps it out of tracebacks too.
            raise TelegramUnavailable(
                f"The Telegram Bot API at {settings.telegram_api_url} rejected MEDIABOT_TELEGRAM_TOKEN. "
                "Check the token with @BotFather."
            ) from None
        raise TelegramUnavailable(
            f"The Telegram Bot API at {settings.telegram_api_url} cannot be reached ({REDACTOR.redact(str(exc))})."
        ) from None


@contextlib.asynccontextmanager
async def _receiving(app: App, settings: Settings) -> AsyncIterator[None]:
    """Updates in: long polling by default, a webhook listener when MEDIABOT_TELEGRAM_WEBHOOK_URL is set."""
    if settings.telegram_webhook_url:
        async with serving_webhook(app, settings, ALLOWED_UPDATES):
            yield
        return
    updater = app.updater
    assert updater is not None
    await updater.start_polling(
        timeout=POLL_TIMEOUT_S, allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False
    )
    try:
        yield
    finally:
        if updater.running:
            await updater.stop()


async def _set_commands(app: App) -> None:
    """The command menu in English for everyone, and in each language we speak for people whose app uses it
    (Telegram picks by the app's two-letter language code); the 20 per-language menus are sent together, so
    start-up waits for about one round trip, not twenty."""
    admins = BotCommandScopeAllChatAdministrators()
    calls = [
        app.bot.set_my_commands(texts.commands()),
        app.bot.set_my_commands(texts.admin_commands(), scope=admins),
    ]
    for locale in LOCALES[1:]:
        with use(locale):
            code = locale.split("_", 1)[0]
            calls.append(app.bot.set_my_commands(texts.commands(), language_code=code))
            calls.append(app.bot.set_my_commands(texts.admin_commands(), scope=admins, language_code=code))
    failed = [r for r in await asyncio.gather(*calls, return_exceptions=True) if isinstance(r, Exception)]
    for exc in failed[:1]:
        if not isinstance(exc, TelegramError):
            raise exc
        log.warning(
            "telegram: setMyCommands failed %d times (%s); the command menu may be outdated", len(failed), exc
        )
