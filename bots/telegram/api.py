"""Where a Telegram request is answered (a chat, the person's message, the bot's progress message), and the
Bot API calls every answer is made of, paced per chat and waiting out flood control."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from telegram import Bot, LinkPreviewOptions, Message, ReplyParameters
from telegram.error import BadRequest, TelegramError

from bots.files import LocalFiles
from bots.progress import ChatPacer
from bots.telegram.calls import message_gone, not_modified, with_flood_retry
from core.bootstrap import Services
from core.delivery.filecache import DeliveryRef

log = logging.getLogger(__name__)

PLATFORM = "telegram"
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
CHAT_INTERVAL_S = 1.0  # per chat, shared by all progress messages in it


@dataclass
class Target:
    """Where a request is answered; stored in the request's `target` so a restarted bot can finish it."""

    chat_id: int
    reply_to: int | None = None
    progress_id: int | None = None
    thread_id: int | None = None
    # The language of the person it answers: a delivery (even one resumed after a restart) speaks it.
    locale: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"chat_id": self.chat_id, "reply_to": self.reply_to, "progress_id": self.progress_id,
                "thread_id": self.thread_id, "locale": self.locale}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target | None:
        if not data or data.get("chat_id") is None:
            return None
        return cls(
            int(data["chat_id"]), data.get("reply_to"), data.get("progress_id"), data.get("thread_id"),
            data.get("locale"),
        )  # fmt: skip

    def reply(self) -> ReplyParameters | None:
        if self.reply_to is None:
            return None
        return ReplyParameters(message_id=self.reply_to, allow_sending_without_reply=True)


class TelegramApi:
    """The Bot API calls of this bot process, shared by its handlers and its deliveries."""

    def __init__(self, services: Services, bot: Bot) -> None:
        self.services = services
        self.settings = services.settings
        self.bot = bot
        self.pacer = ChatPacer(CHAT_INTERVAL_S)
        self.files = LocalFiles(services.jobs, self.settings.tmp_dir / PLATFORM)

    async def edit(self, target: Target, text: str, keyboard: Any = None) -> bool:
        """Replace the progress message's text (and its keyboard); False when the message is gone."""
        assert target.progress_id is not None
        try:
            await with_flood_retry(
                lambda: self.bot.edit_message_text(
                    text, chat_id=target.chat_id, message_id=target.progress_id, reply_markup=keyboard,
                    link_preview_options=NO_PREVIEW,
                ),
                chat=str(target.chat_id), pacer=self.pacer,
            )  # fmt: skip
        except TelegramError as exc:
            if message_gone(exc):
                return False
            if not not_modified(exc):
                raise
        return True

    async def reply(self, target: Target, text: str, **kwargs: Any) -> Message:
        """A message of its own, replying to the person's."""
        return await with_flood_retry(
            lambda: self.bot.send_message(
                target.chat_id, text, reply_parameters=target.reply(), message_thread_id=target.thread_id,
                link_preview_options=NO_PREVIEW, **kwargs,
            ),
            chat=str(target.chat_id), pacer=self.pacer,
        )  # fmt: skip

    async def resend(self, ref: DeliveryRef, target: Target) -> bool:
        """Answer from Telegram's own copy (no download, no upload). False when Telegram no longer knows it."""
        send = {"video": self.bot.send_video, "audio": self.bot.send_audio}.get(
            ref.file_type, self.bot.send_document
        )
        field = ref.file_type if ref.file_type in ("video", "audio") else "document"
        try:
            await with_flood_retry(
                lambda: send(target.chat_id, **{field: ref.file_ref}, reply_parameters=target.reply(),  # type: ignore[operator]
                             message_thread_id=target.thread_id),
                chat=str(target.chat_id), pacer=self.pacer,
            )  # fmt: skip
        except BadRequest as exc:
            log.info("telegram: cached file_id refused (%s); downloading again", exc.message)
            return False
        return True
