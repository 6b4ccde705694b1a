"""Telegram's side of the delivery flow (bots/chat.py): a request is answered in its chat, replying to the
person's message. Its progress message (with a Cancel button) shows the download, then makes way for the
answer: the file (and a note when a copy that fits was sent), or a link; a failure or a playlist's list is
the progress message's last word."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from telegram.error import Forbidden, RetryAfter, TelegramError

from bots.chat import Parcel, Screen
from bots.playlist import Playlist
from bots.progress import ChatPacer
from bots.telegram import texts
from bots.telegram.api import NO_PREVIEW, PLATFORM, Target, TelegramApi
from bots.telegram.calls import message_gone, not_modified, retry_seconds
from bots.telegram.uploads import Uploader
from core.delivery.planner import Destination
from core.jobs.views import JobView, RequestView

log = logging.getLogger(__name__)

# The public Bot API's limit: a server that refuses less than it claims to take is aimed at this next.
TIERS = (50_000_000,)
EDIT_INTERVAL_S = 2.0  # per progress message


class TelegramChat:
    """Telegram as the conductor sees it (a `ChatAdapter`)."""

    platform = PLATFORM
    edit_interval_s = EDIT_INTERVAL_S

    def __init__(self, api: TelegramApi) -> None:
        self.api = api
        self.pacer: ChatPacer = api.pacer

    def reply_for(self, request: RequestView) -> TelegramReply | None:
        target = Target.from_dict(request.target)
        if target is None:
            log.warning("telegram request %s has no chat to answer in", request.id)
            return None
        return TelegramReply(self.api, request.id, target)

    def reply_to(self, request_id: str, target: Target, shown: Screen | None = None) -> TelegramReply:
        """The answer to a request just made, whose progress message (if any) shows `shown`."""
        return TelegramReply(self.api, request_id, target, shown)


class TelegramReply:
    """One request's answer in its Telegram chat (a `ChatReply`)."""

    def __init__(
        self, api: TelegramApi, request_id: str, target: Target, shown: Screen | None = None
    ) -> None:
        self.api = api
        self.bot = api.bot
        self.settings = api.settings
        self.request_id = request_id
        self.target = target
        self.chat = str(target.chat_id)
        self.shown = shown
        self.gone = False  # the progress message was deleted by the person
        self.uploads = Uploader(api, request_id, target)

    def stored(self) -> dict[str, Any]:
        return self.target.to_dict()

    def destination(self) -> Destination:
        settings = self.settings
        return Destination(
            "Telegram", settings.telegram_upload_limit_bytes, split=settings.telegram_split, tiers=TIERS
        )

    # -- the progress message --------------------------------------------------------------------------

    def progress(self, view: JobView) -> Screen:
        return texts.progress_text(view), True

    def uploading(self, view: JobView) -> Screen | None:
        if self.target.progress_id is None or self.gone:
            return None
        return texts.uploading_text(view), False

    def listing(self, playlist: Playlist) -> Screen:
        return texts.playlist_screen(playlist)

    async def show(self, screen: Screen) -> float | None:
        if self.gone or screen == self.shown:
            return None
        text, button = screen
        keyboard = texts.cancel_keyboard(self.request_id) if button else None
        try:
            if self.target.progress_id is None:
                # Resumed without a progress message (the process stopped right after submitting), or a
                # finished file that needs a copy made first: send one.
                message = await self.bot.send_message(
                    self.target.chat_id, text, reply_parameters=self.target.reply(),
                    message_thread_id=self.target.thread_id, reply_markup=keyboard,
                    link_preview_options=NO_PREVIEW,
                )  # fmt: skip
                self.target.progress_id = message.message_id
                await self.api.services.jobs.update_target(self.request_id, self.target.to_dict())
            else:
                await self.bot.edit_message_text(
                    text, chat_id=self.target.chat_id, message_id=self.target.progress_id,
                    reply_markup=keyboard, link_preview_options=NO_PREVIEW,
                )  # fmt: skip
        except RetryAfter as exc:
            return retry_seconds(exc)
        except TelegramError as exc:
            if message_gone(exc):
                log.info("telegram request %s: progress message is gone", self.request_id)
                self.gone = True
            elif not not_modified(exc):
                raise
        self.shown = screen
        return None

    # -- results ---------------------------------------------------------------------------------------

    async def send_file(self, parcel: Parcel) -> None:
        await self.uploads.send(parcel)
        if parcel.note is not None:
            await self._fit_note(parcel)

    async def _fit_note(self, parcel: Parcel) -> None:
        """After a copy that fits: which copy it was, and a link to the full quality."""
        text = texts.fitted_text(parcel.note or "", parcel.full_link, self.settings.link_ttl_s, parcel.item)
        try:
            await self.api.reply(self.target, text)
        except Forbidden:
            raise
        except TelegramError as exc:  # the file is there; a lost note is not worth failing for
            log.warning("telegram request %s: note not sent (%s)", self.request_id, exc.message)

    async def send_link(self, parcel: Parcel, url: str, *, refused: bool, failed: bool) -> None:
        # The planner's note says no copy fits; link_text says it in the bot's words, with the size.
        settings = self.settings
        text = texts.link_text(
            parcel.original, url, settings.telegram_upload_limit_bytes, settings.link_ttl_s,
            rejected=refused, failed=failed, no_copy=True,
        )  # fmt: skip
        await self.api.reply(self.target, text)

    async def send_subtitles(self, parcel: Parcel) -> None:
        await self.uploads.send_subtitles(parcel.original, parcel.item)

    async def failed(self, view: JobView, sentence: str, item: str | None = None) -> None:
        if item is None:
            await self.conclude(sentence)
        else:
            await self.api.reply(self.target, texts.item_failed(item, sentence))

    async def cancelled(self, view: JobView) -> None:
        await self.conclude(texts.CANCELLED)

    async def done(self, view: JobView) -> None:
        """Delete the progress message once the answer is there; if that fails, leave a short summary."""
        if self.target.progress_id is None or self.gone:
            return
        try:
            await self.bot.delete_message(self.target.chat_id, self.target.progress_id)
        except TelegramError as exc:
            log.info("telegram request %s: progress message not deleted (%s)", self.request_id, exc.message)
            with contextlib.suppress(TelegramError):
                await self.api.edit(self.target, texts.done_summary(view))

    async def conclude(self, text: str) -> None:
        if self.target.progress_id is not None and not self.gone:
            if (text, False) == self.shown:
                return  # the same text again would be refused as "not modified"
            if await self.api.edit(self.target, text):
                self.shown = (text, False)
                return
            self.gone = True
        await self.api.reply(self.target, text)

    async def apologize(self) -> None:
        await self.conclude(texts.APOLOGY)

    # -- what a failure means --------------------------------------------------------------------------

    def closed(self, exc: Exception) -> bool:
        return isinstance(exc, Forbidden)

    def retry_after(self, exc: Exception) -> float | None:
        # Flood control is waited out call by call (with_flood_retry); anything else gets the apology.
        return None
