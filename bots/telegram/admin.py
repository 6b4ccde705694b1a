"""The operator's commands in Telegram (issue 24 item 4): /stats, /ban, /unban, /limits, /queue, for the ids in
MEDIABOT_TELEGRAM_ADMINS. To anyone else they do not exist: the ordinary unknown-command answer, and they are
not in their command menu (the operators get theirs with BotCommandScopeChat)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommand, BotCommandScopeChat, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from bots.telegram import texts
from core.admin import texts as admin_texts
from core.bootstrap import Services
from core.errors import InvalidRequest, MediabotError
from core.i18n import ENGLISH, LOCALES, N_, _, use

log = logging.getLogger(__name__)

SOURCE = "telegram"
Context = ContextTypes.DEFAULT_TYPE
Answer = Callable[[Update, str], Awaitable[None]]

_OPERATOR_COMMANDS = (
    ("stats", N_("Operator: requests, downloads and failures")),
    ("queue", N_("Operator: what runs and waits, by site")),
    ("ban", N_("Operator: /ban USER [reason]")),
    ("unban", N_("Operator: /unban USER")),
    ("limits", N_("Operator: /limits USER N downloads per hour")),
)


def operator_commands() -> list[BotCommand]:
    """The operator's commands in the current language (set_commands sets one menu per language)."""
    return [BotCommand(name, _(description)) for name, description in _OPERATOR_COMMANDS]


class AdminCommands:
    def __init__(self, services: Services, answer: Answer) -> None:
        self.services = services
        self.admin = services.admin
        self.admins = {int(entry) for entry in services.settings.telegram_admins}
        self.answer = answer

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        new = filters.UpdateType.MESSAGE
        for name, handler in (
            ("stats", self.stats), ("queue", self.queue), ("ban", self.ban), ("unban", self.unban),
            ("limits", self.limits),
        ):  # fmt: skip
            app.add_handler(CommandHandler(name, handler, filters=new))

    async def set_commands(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Each operator's private chat gets the usual menu plus the operator's commands, in English and in
        each language we speak (Telegram shows the one of the operator's app), sent together as runner.py
        sends the others."""
        for admin_id in sorted(self.admins):
            scope = BotCommandScopeChat(admin_id)
            calls = []
            for locale in LOCALES:
                with use(locale):
                    menu = texts.commands() + operator_commands()
                code = None if locale == ENGLISH else locale.split("_", 1)[0]
                calls.append(app.bot.set_my_commands(menu, scope=scope, language_code=code))
            found = await asyncio.gather(*calls, return_exceptions=True)
            failed = [r for r in found if isinstance(r, Exception)]
            for exc in failed[:1]:
                if not isinstance(exc, TelegramError):
                    raise exc
                # The operator never opened a chat with the bot: Telegram refuses ("chat not found").
                log.warning("telegram: operator %s's command menu not set (%s)", admin_id, exc)

    async def _operator(self, update: Update) -> int | None:
        """The operator's id; for anyone else the answer an unknown command gets, and None."""
        user = update.effective_user
        if user is not None and user.id in self.admins:
            return user.id
        message = update.effective_message
        if message is not None and message.chat.type == "private":
            await self.answer(update, texts.UNKNOWN_COMMAND)
        return None

    async def stats(self, update: Update, context: Context) -> None:
        if await self._operator(update) is None:
            return
        await self.answer(update, admin_texts.stats_text(await self.admin.stats()))

    async def queue(self, update: Update, context: Context) -> None:
        if await self._operator(update) is None:
            return
        await self.answer(update, admin_texts.queue_text(await self.admin.queue()))

    async def ban(self, update: Update, context: Context) -> None:
        """/ban USER [reason], or /ban [reason] in reply to the person's message."""
        operator = await self._operator(update)
        if operator is None:
            return
        who, rest = _who(update.effective_message, list(context.args or []))
        if who is None:
            await self.answer(update, _(admin_texts.BAN_USAGE))
            return
        try:
            ban = await self.admin.ban(
                SOURCE, who, reason=" ".join(rest), by=f"{SOURCE}:{operator}", by_user=(SOURCE, str(operator))
            )
        except MediabotError as exc:
            await self.answer(update, _(exc.message))
            return
        await self.answer(update, admin_texts.ban_done(ban.user_id, ban.reason))

    async def unban(self, update: Update, context: Context) -> None:
        operator = await self._operator(update)
        if operator is None:
            return
        who, rest = _who(update.effective_message, list(context.args or []))
        if who is None or rest:
            await self.answer(update, _(admin_texts.UNBAN_USAGE))
            return
        try:
            await self.admin.unban(SOURCE, who, by=f"{SOURCE}:{operator}")
        except MediabotError as exc:
            await self.answer(update, _(exc.message))
            return
        await self.answer(update, admin_texts.unban_done(who))

    async def limits(self, update: Update, context: Context) -> None:
        """/limits USER N (or default); /limits USER shows it; /limits N in reply to the person's message."""
        operator = await self._operator(update)
        if operator is None:
            return
        who, rest = _who(update.effective_message, list(context.args or []))
        if who is None or len(rest) > 1:
            await self.answer(update, _(admin_texts.LIMITS_USAGE))
            return
        try:
            if not rest:
                quota = await self.admin.quota(SOURCE, who)
                await self.answer(
                    update, admin_texts.limit_shown(who, quota.requests_per_hour, quota.overridden)
                )
                return
            per_hour = _per_hour(rest[0])
            quota = await self.admin.set_quota(SOURCE, who, per_hour, by=f"{SOURCE}:{operator}")
        except MediabotError as exc:
            await self.answer(update, _(exc.message))
            return
        await self.answer(update, admin_texts.limit_done(who, quota.requests_per_hour, quota.overridden))


def _who(message: Message | None, args: list[str]) -> tuple[str | None, list[str]]:
    """The person a command names and the words after: the author of the message it replies to (unless
    that is a bot: the operator answering the bot), else a numeric id as the first word."""
    replied = message.reply_to_message if message is not None else None
    if replied is not None and replied.from_user is not None and not replied.from_user.is_bot:
        return str(replied.from_user.id), args
    if args and args[0].isdigit():
        return args[0], args[1:]
    return None, args


def _per_hour(word: str) -> int | None:
    if word.lower() in ("default", "reset"):
        return None
    try:
        return int(word)
    except ValueError:
        raise InvalidRequest(admin_texts.BAD_LIMIT) from None
