"""Inline mode: "@bot LINK" typed in any chat.

Media Telegram already holds for the person's default variant (a file_id in core's delivery cache) is answered
at once as a cached video, song or document. Anything else is answered with one article whose message says
"Downloading…" and carries a button: Telegram reports which inline message it became (chosen_inline_result
with its inline_message_id; only for a message with an inline keyboard, and only when the operator turned on
inline feedback with @BotFather /setinlinefeedback). Then the link is submitted like any other, the inline
message shows the progress, and the finished file goes to the storage chat (MEDIABOT_TELEGRAM_STORAGE_CHAT)
for a file_id, because an inline message can't take an upload, only a file Telegram holds: editMessageMedia
turns the inline message into the media. The planner applies as everywhere (a copy that fits, else a link)."""

from __future__ import annotations

import logging
from typing import Any

from telegram import (
    CallbackQuery,
    ChosenInlineResult,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResult,
    InlineQueryResultArticle,
    InlineQueryResultCachedAudio,
    InlineQueryResultCachedDocument,
    InlineQueryResultCachedVideo,
    InlineQueryResultsButton,
    InputMediaAudio,
    InputMediaDocument,
    InputMediaVideo,
    InputTextMessageContent,
    Update,
)
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChosenInlineResultHandler,
    ContextTypes,
    InlineQueryHandler,
)

from bots.chat import Parcel, Screen, UploadFailed
from bots.conductor import Conductor
from bots.playlist import Playlist
from bots.telegram import texts
from bots.telegram.api import NO_PREVIEW, PLATFORM, Target, TelegramApi
from bots.telegram.calls import message_gone, not_modified, retry_seconds, with_flood_retry
from bots.telegram.reply import TIERS, TelegramChat, TelegramReply
from bots.telegram.submitting import HOUR_S, SOURCE, Refused
from bots.telegram.uploads import cache_key
from core.bootstrap import Services
from core.delivery.filecache import DeliveryRef, variant_key
from core.delivery.planner import Destination
from core.errors import MediabotError
from core.jobs.choices import SubmitRequest
from core.jobs.views import JobView, RequestView
from core.net import extract_urls
from core.words import cut_note

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE

INLINE = "inline_message_id"  # the key of a request's target that marks it as answered in an inline message
WAIT_DATA = "inl:wait"
# Result ids say what the chosen result was: "dv"/"da" a download of a video/song, "c" a cached file.
DOWNLOAD = "d"
CACHED = "c"
# Telegram keeps an answer this long for the same query from the same person; a cached answer may become
# a download's file meanwhile, so keep it short.
ANSWER_CACHE_S = 5


class InlineChat(TelegramChat):
    """Telegram as the conductor sees it, where a request may also be answered in an inline message."""

    def reply_for(self, request: RequestView) -> TelegramReply | None:
        inline_id = request.target.get(INLINE)
        if inline_id:
            return InlineReply(self.api, request.id, str(inline_id))
        return super().reply_for(request)


class InlineReply(TelegramReply):
    """A request made with "@bot LINK": its progress and its answer are the inline message, edited; the file
    goes to the storage chat first (for a file_id) and then into the inline message."""

    def __init__(self, api: TelegramApi, request_id: str, inline_message_id: str) -> None:
        self.storage_chat = api.settings.telegram_storage_chat
        # Uploads (TelegramReply's Uploader) go to the storage chat, as messages of their own.
        super().__init__(api, request_id, Target(self.storage_chat or 0))
        self.inline_message_id = inline_message_id
        self.chat = f"inline:{inline_message_id}"  # the progress edits' own pace, not the storage chat's

    def stored(self) -> dict[str, Any]:
        return {INLINE: self.inline_message_id}

    def destination(self) -> Destination:
        # One inline message holds one file: no parts.
        return Destination("Telegram", self.settings.telegram_upload_limit_bytes, split=False, tiers=TIERS)

    def progress(self, view: JobView) -> Screen:
        return texts.progress_text(view), True  # with Cancel (only its person may press it)

    def uploading(self, view: JobView) -> Screen | None:
        return None if self.gone else (texts.uploading_text(view), False)

    def listing(self, playlist: Playlist) -> Screen:
        # One inline message holds one file: a playlist's items are for a chat with the bot.
        return texts.INLINE_PLAYLIST, False

    async def show(self, screen: Screen) -> float | None:
        if self.gone or screen == self.shown:
            return None
        text, button = screen
        keyboard = texts.cancel_keyboard(self.request_id) if button else None
        try:
            await self.bot.edit_message_text(
                text, inline_message_id=self.inline_message_id, reply_markup=keyboard,
                link_preview_options=NO_PREVIEW,
            )  # fmt: skip
        except RetryAfter as exc:
            return retry_seconds(exc)
        except TelegramError as exc:
            if message_gone(exc) or "message_id_invalid" in exc.message.lower():
                log.info("telegram request %s: inline message is gone", self.request_id)
                self.gone = True
            elif not not_modified(exc):
                raise
        self.shown = screen
        return None

    async def send_file(self, parcel: Parcel) -> None:
        view = parcel.sent
        if view.parts or parcel.item is not None:
            raise UploadFailed("an inline message holds one file, not parts or a playlist's items")
        if parcel.note is not None:
            caption = texts.fitted_text(parcel.note, parcel.full_link, self.settings.link_ttl_s)
        else:
            caption = cut_note(view)
        key = cache_key(parcel.request, view)
        deliveries = self.api.services.deliveries
        cached = await deliveries.get(PLATFORM, key) if key is not None else None
        if cached is not None:
            if await self._put_media(cached, caption):
                return
            assert key is not None
            await deliveries.forget(PLATFORM, key)
        if self.storage_chat is None:
            raise UploadFailed("no storage chat (MEDIABOT_TELEGRAM_STORAGE_CHAT) to upload to")
        await self.uploads.send(parcel)  # to the storage chat; Refused when Telegram finds it too large
        ref = self.uploads.sent
        if ref is None or not await self._put_media(ref, caption):
            raise UploadFailed("the inline message did not take the uploaded file")

    async def _put_media(self, ref: DeliveryRef, caption: str | None) -> bool:
        """Turn the inline message into the file Telegram holds; False when it does not know the file_id."""
        media: InputMediaVideo | InputMediaAudio | InputMediaDocument
        if ref.file_type == "video":
            media = InputMediaVideo(ref.file_ref, caption=caption, supports_streaming=True)
        elif ref.file_type == "audio":
            media = InputMediaAudio(ref.file_ref, caption=caption)
        else:
            media = InputMediaDocument(ref.file_ref, caption=caption)
        try:
            await with_flood_retry(
                lambda: self.bot.edit_message_media(media, inline_message_id=self.inline_message_id),
                chat=self.chat, pacer=self.api.pacer,
            )  # fmt: skip
        except BadRequest as exc:
            if "file identifier" in exc.message.lower():
                log.info("telegram request %s: file_id refused (%s)", self.request_id, exc.message)
                return False
            if message_gone(exc) or "message_id_invalid" in exc.message.lower():
                self.gone = True  # nowhere to show it; the file is in the cache for the next ask
                return True
            if not_modified(exc):  # it holds this file already (a delivery tried again)
                return True
            raise UploadFailed(exc.message) from exc
        self.shown = None
        return True

    async def send_link(self, parcel: Parcel, url: str, *, refused: bool, failed: bool) -> None:
        if parcel.item is not None:
            return  # a playlist's item: the message says what to do instead (listing)
        settings = self.settings
        text = texts.link_text(
            parcel.original, url, settings.telegram_upload_limit_bytes, settings.link_ttl_s,
            rejected=refused, failed=failed, no_copy=True,
        )  # fmt: skip
        await self.conclude(text)

    async def send_subtitles(self, parcel: Parcel) -> None:
        return None  # inline asks come without subtitles: one message holds one file

    async def failed(self, view: JobView, sentence: str, item: str | None = None) -> None:
        if item is None:  # a playlist's item: the message says what to do instead (listing)
            await self.conclude(sentence)

    async def done(self, view: JobView) -> None:
        return None  # the inline message is the file now

    async def conclude(self, text: str) -> None:
        if self.gone or (text, False) == self.shown:
            return
        try:
            await with_flood_retry(
                lambda: self.bot.edit_message_text(
                    text, inline_message_id=self.inline_message_id, link_preview_options=NO_PREVIEW
                ),
                chat=self.chat, pacer=self.api.pacer,
            )  # fmt: skip
        except TelegramError as exc:
            if message_gone(exc) or "message_id_invalid" in exc.message.lower():
                self.gone = True
                return
            if not not_modified(exc):
                raise
        self.shown = (text, False)


def cached_result(ref: DeliveryRef, result_id: str, url: str) -> InlineQueryResult:
    if ref.file_type == "video":
        return InlineQueryResultCachedVideo(
            result_id, ref.file_ref, texts.INLINE_CACHED_TITLE, description=url
        )
    if ref.file_type == "audio":
        return InlineQueryResultCachedAudio(result_id, ref.file_ref)
    return InlineQueryResultCachedDocument(
        result_id, texts.INLINE_CACHED_TITLE, ref.file_ref, description=url
    )


class InlineMode:
    """The inline query and chosen inline result handlers."""

    def __init__(self, services: Services, api: TelegramApi, conductor: Conductor[TelegramReply]) -> None:
        self.services = services
        self.settings = services.settings
        self.api = api
        self.conductor = conductor

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        app.add_handler(InlineQueryHandler(self.on_query))
        app.add_handler(ChosenInlineResultHandler(self.on_chosen))
        app.add_handler(CallbackQueryHandler(self.on_wait_button, pattern=rf"^{WAIT_DATA}$"))

    async def on_query(self, update: Update, context: Context) -> None:
        query = update.inline_query
        assert query is not None
        await self.answer(query)

    async def answer(self, query: InlineQuery) -> None:
        urls = extract_urls(query.query or "")
        if not urls:
            await self._explain(query, texts.INLINE_HINT)
            return
        url = urls[0]
        prefs = await self.services.prefs.get(SOURCE, str(query.from_user.id))
        if not prefs.inline:
            await self._explain(query, texts.INLINE_OFF, "settings")
            return
        try:
            key = variant_key(url, prefs.kind, prefs.quality, playable=self.settings.chat_playable)
        except MediabotError:
            await self._explain(query, texts.INLINE_HINT)
            return
        deliveries = self.services.deliveries
        cached = await deliveries.get(SOURCE, key)
        if cached is not None:
            try:
                await query.answer(
                    [cached_result(cached, CACHED, url)], cache_time=ANSWER_CACHE_S, is_personal=True
                )
                return
            except BadRequest as exc:
                if "file identifier" not in exc.message.lower():
                    raise  # the query is too old, or another mistake: the error handler logs it
                log.info("telegram: cached file_id refused in an inline answer (%s)", exc.message)
                await deliveries.forget(SOURCE, key)  # Telegram no longer knows it: offer a download
        if self.settings.telegram_storage_chat is None:
            # Nowhere to put a new download for an inline message: the person downloads it with the bot.
            await self._explain(query, texts.INLINE_NOT_READY, "inline")
            return
        kind = "a" if prefs.kind == "audio" else "v"
        article = InlineQueryResultArticle(
            f"{DOWNLOAD}{kind}", texts.INLINE_RESULT_TITLE,
            InputTextMessageContent(f"{texts.INLINE_DOWNLOADING}\n{url}", link_preview_options=NO_PREVIEW),
            # The keyboard is what makes Telegram report the inline message's id (chosen_inline_result).
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(texts.INLINE_WAIT_BUTTON, callback_data=WAIT_DATA)]]),
            description=url,
        )  # fmt: skip
        await query.answer([article], cache_time=ANSWER_CACHE_S, is_personal=True)

    async def _explain(self, query: InlineQuery, text: str, start: str = "inline") -> None:
        """No results, and a button above them that says why (it opens a private chat with the bot)."""
        button = InlineQueryResultsButton(text=text, start_parameter=start)
        await query.answer([], cache_time=ANSWER_CACHE_S, is_personal=True, button=button)

    async def on_chosen(self, update: Update, context: Context) -> None:
        chosen = update.chosen_inline_result
        assert chosen is not None
        if not chosen.result_id.startswith(DOWNLOAD):
            return  # a cached file: Telegram sent it already
        if chosen.inline_message_id is None:
            log.warning("telegram: a chosen inline result without inline_message_id (no keyboard on it?)")
            return
        reply = InlineReply(self.api, "-", chosen.inline_message_id)
        try:
            await self.download(chosen, reply)
        except MediabotError as exc:
            await reply.conclude(exc.message)
        except Refused as exc:
            await reply.conclude(str(exc))

    async def download(self, chosen: ChosenInlineResult, reply: InlineReply) -> None:
        """Submit the link like any other; the conductor follows it into the inline message."""
        urls = extract_urls(chosen.query or "")
        if not urls:
            await reply.conclude(texts.INLINE_HINT)
            return
        user_id = str(chosen.from_user.id)
        settings, services = self.settings, self.services
        prefs = await services.prefs.get(SOURCE, user_id)
        if not prefs.inline:
            await reply.conclude(texts.INLINE_OFF_TOO)
            return
        # The same per-person limits as a link sent to the bot.
        if await services.jobs.count_active(SOURCE, user_id) >= settings.user_max_concurrent:
            raise Refused(texts.too_many_running(settings.user_max_concurrent))
        allowed, retry_after = await services.limits.hit(
            f"telegram:hour:{user_id}", settings.user_requests_per_hour, HOUR_S
        )
        if not allowed:
            raise Refused(texts.rate_limited(settings.user_requests_per_hour, retry_after))
        kind = "audio" if chosen.result_id == f"{DOWNLOAD}a" else "video"
        submission = await services.jobs.submit(
            SubmitRequest(
                text=urls[0], source=SOURCE, user_id=user_id, kind=kind, quality=prefs.quality,  # type: ignore[arg-type]
                target=reply.stored(), playable=settings.chat_playable,
            )
        )  # fmt: skip
        reply = InlineReply(self.api, submission.request.id, reply.inline_message_id)
        self.conductor.follow(submission.request, submission.job, reply=reply)

    async def on_wait_button(self, update: Update, context: Context) -> None:
        query: CallbackQuery | None = update.callback_query
        assert query is not None
        try:
            await query.answer(texts.INLINE_WAIT_PRESSED)
        except (BadRequest, Forbidden) as exc:
            log.debug("telegram: inline wait button not answered (%s)", exc)
