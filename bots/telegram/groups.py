"""Groups done right: the bot acts on links addressed to it (a mention, a reply to it, a command) unless the
group's admins turned on "every link" with /groupsettings; a person's format picker does not stay in the
group's view longer than needed (removed once chosen, or after MEDIABOT_TELEGRAM_GROUP_PICKER_TIMEOUT_S)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from telegram import ChatMember, Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, filters

from bots.telegram import texts
from bots.telegram.api import Target, TelegramApi
from core.aio import cancel_and_wait, spawn
from core.bootstrap import Services
from core.i18n import _
from core.net import extract_urls

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

SOURCE = "telegram"
GROUPS = ("group", "supergroup")
ADMINS = (ChatMember.OWNER, ChatMember.ADMINISTRATOR)


def in_group(message: Message) -> bool:
    return message.chat.type in GROUPS


class Groups:
    """/groupsettings and what it decides."""

    def __init__(self, services: Services, api: TelegramApi) -> None:
        self.services = services
        self.api = api

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(CommandHandler("groupsettings", self.command, filters=filters.UpdateType.MESSAGE))
        app.add_handler(CallbackQueryHandler(self.button, pattern=r"^grp:"))

    async def takes_every_link(self, message: Message) -> bool:
        """A message not addressed to the bot, in a group whose admins asked for every link to be taken."""
        if not in_group(message) or not extract_urls(message.text or message.caption or ""):
            return False
        return (await self.services.groups.get(SOURCE, str(message.chat_id))).every_link

    async def is_admin(self, message: Message | None, chat_id: int, user_id: int) -> bool:
        # An admin posting anonymously posts as the group itself.
        if message is not None and message.sender_chat is not None and message.sender_chat.id == chat_id:
            return True
        try:
            member = await self.api.bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:
            log.info("telegram: getChatMember in %s failed (%s); not an admin", chat_id, exc.message)
            return False
        return member.status in ADMINS

    async def command(self, update: Update, context: Context) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        thread_id = message.message_thread_id if message.is_topic_message else None
        target = Target(message.chat_id, message.message_id, thread_id=thread_id)
        if not in_group(message):
            await self.api.reply(target, texts.GROUP_ONLY)
            return
        if not await self.is_admin(message, message.chat_id, message.from_user.id):
            await self.api.reply(target, texts.GROUP_ADMINS_ONLY)
            return
        current = await self.services.groups.get(SOURCE, str(message.chat_id))
        await self.api.reply(
            target, texts.group_settings_text(current.every_link),
            reply_markup=texts.group_settings_keyboard(current.every_link),
        )  # fmt: skip

    async def button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        message = query.message if isinstance(query.message, Message) else None
        if message is None or not in_group(message) or query.data not in ("grp:every:1", "grp:every:0"):
            await query.answer(texts.CHOICE_STALE)
            return
        if not await self.is_admin(None, message.chat_id, query.from_user.id):
            await query.answer(texts.GROUP_ADMINS_ONLY, show_alert=True)
            return
        saved = await self.services.groups.set(
            SOURCE, str(message.chat_id), every_link=query.data.endswith("1"), by=str(query.from_user.id)
        )
        await query.answer(_("Saved."))
        with contextlib.suppress(TelegramError):  # "not modified" when pressed twice
            await query.edit_message_text(
                texts.group_settings_text(saved.every_link),
                reply_markup=texts.group_settings_keyboard(saved.every_link),
            )


class PickerTimers:
    """Removes a format picker from a group once its time is up, unless it was chosen (then it became the
    download's progress message, which goes away when the file arrives). Kept in memory: a picker offered
    just before a restart stays, and still works."""

    def __init__(self, api: TelegramApi) -> None:
        self.api = api
        self.timeout_s = api.settings.telegram_group_picker_timeout_s
        self._timers: dict[tuple[int, int], asyncio.Task[None]] = {}

    def offered(self, picker: Message) -> None:
        if not in_group(picker):
            return  # in a private chat it bothers nobody
        key = (picker.chat_id, picker.message_id)
        task = spawn(self._expire(key), name=f"telegram-picker-{picker.message_id}")
        self._timers[key] = task
        task.add_done_callback(lambda t: self._timers.pop(key, None) if self._timers.get(key) is t else None)

    def chosen(self, chat_id: int, message_id: int) -> None:
        task = self._timers.pop((chat_id, message_id), None)
        if task is not None:
            task.cancel()

    async def _expire(self, key: tuple[int, int]) -> None:
        await asyncio.sleep(self.timeout_s)
        self._timers.pop(key, None)
        try:
            await self.api.bot.delete_message(*key)
        except TelegramError as exc:
            log.info("telegram: expired picker %s not deleted (%s)", key, exc.message)

    async def close(self) -> None:
        timers = list(self._timers.values())
        self._timers.clear()
        await asyncio.gather(*(cancel_and_wait(t) for t in timers))
