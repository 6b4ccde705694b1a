"""What the bot does with each update: links, commands, buttons; who may use it and where."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from telegram import Message, MessageEntity, Update, User
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bots.conductor import Conductor
from bots.telegram import picker, texts
from bots.telegram.admin import AdminCommands
from bots.telegram.api import NO_PREVIEW, TelegramApi
from bots.telegram.groups import Groups
from bots.telegram.inline import InlineMode, InlineReply
from bots.telegram.reply import TelegramChat, TelegramReply
from bots.telegram.submitting import SOURCE, Ask, Refused, Submitter, links
from bots.telegram.subscribing import Subscribing
from core.bootstrap import Services
from core.cuts.sections import InvalidSection, find_range_after_link, parse_section
from core.errors import MediabotError, NotFound
from core.i18n import ENGLISH, _, negotiate, ready, set_locale, supported, use
from core.jobs.choices import check_choices
from core.jobs.views import RequestView
from core.net import extract_urls

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
LANGUAGE_TTL_S = 60.0  # another process's /language reaches this one within a minute
Handler = Callable[["Handlers", Update, Context], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Cancelled:
    request: RequestView
    # Requests made on its behalf that this cancel stopped: playlist items, a copy being made to fit.
    children: int = 0


def replies_errors(fn: Handler) -> Handler:
    """A core error becomes its one sentence, as a reply; anything else goes to the error handler."""

    @functools.wraps(fn)
    async def wrapper(self: Handlers, update: Update, context: Context) -> None:
        try:
            await fn(self, update, context)
        except MediabotError as exc:
            await self.answer(update, _(exc.message))

    return wrapper


class Handlers:
    def __init__(
        self, services: Services, api: TelegramApi, chat: TelegramChat, conductor: Conductor[TelegramReply]
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.api = api
        self.chat = chat
        self.conductor = conductor
        self.submit = Submitter(services, api, conductor, chat)
        self.following = Subscribing(services, api)
        self.groups = Groups(services, api)  # /groupsettings; "every link" in a group
        self.inline = InlineMode(services, api, conductor)  # @bot LINK in any chat
        self.operator = AdminCommands(services, self.answer)  # issue 24: /stats, /ban, /limits...
        allowed = [entry.strip() for entry in self.settings.telegram_allowed_users if entry.strip()]
        self.allowed_ids = {int(e) for e in allowed if e.lstrip("-").isdigit()}
        self.allowed_names = {e.lstrip("@").lower() for e in allowed if not e.lstrip("-").isdigit()}
        # The language each person picked (/language), read once a while rather than on every update.
        self._languages: dict[str, tuple[float, str | None]] = {}

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        new = filters.UpdateType.MESSAGE  # edits of old messages are not new requests
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        app.add_handler(CommandHandler(["start", "help"], self.help, filters=new))
        app.add_handler(CommandHandler("audio", self.audio, filters=new))
        app.add_handler(CommandHandler("video", self.video, filters=new))
        app.add_handler(CommandHandler("clip", self.clip, filters=new))
        app.add_handler(CommandHandler("gif", self.gif, filters=new))
        app.add_handler(CommandHandler("chapters", self.chapters, filters=new))
        app.add_handler(CommandHandler("settings", self.settings_menu, filters=new))
        app.add_handler(CommandHandler("language", self.language, filters=new))
        app.add_handler(CommandHandler("subs", self.subs, filters=new))
        app.add_handler(CommandHandler("status", self.status, filters=new))
        app.add_handler(CommandHandler("cancel", self.cancel_all, filters=new))
        # Also posted in a channel the bot is an admin of (a channel's posts are not messages).
        here = new | filters.UpdateType.CHANNEL_POST
        app.add_handler(CommandHandler("subscribe", self.subscribe, filters=here))
        app.add_handler(CommandHandler("subscriptions", self.subscriptions, filters=here))
        app.add_handler(CommandHandler("unsubscribe", self.unsubscribe, filters=here))
        self.operator.register(app)
        app.add_handler(CallbackQueryHandler(self.cancel_button, pattern=r"^cancel:"))
        app.add_handler(CallbackQueryHandler(self.settings_button, pattern=r"^set:"))
        app.add_handler(CallbackQueryHandler(self.language_button, pattern=r"^lang:"))
        app.add_handler(CallbackQueryHandler(self.format_button, pattern=picker.PATTERN))
        self.groups.register(app)
        self.inline.register(app)
        app.add_handler(
            MessageHandler(new & (filters.TEXT | filters.CAPTION) & ~filters.COMMAND, self.on_message)
        )
        app.add_handler(
            MessageHandler(new & filters.COMMAND & filters.ChatType.PRIVATE, self.unknown_command)
        )
        app.add_error_handler(self.on_error)

    # -- who and where ------------------------------------------------------------------------------------

    def allowed(self, user: User) -> bool:
        if not self.allowed_ids and not self.allowed_names:
            return True
        return user.id in self.allowed_ids or (user.username or "").lower() in self.allowed_names

    def _open_to(self, chat_id: int) -> bool:
        return (not self.allowed_ids and not self.allowed_names) or chat_id in self.allowed_ids

    @staticmethod
    def addressed(message: Message, bot_id: int, bot_username: str) -> bool:
        """Private chats always; in groups only commands, mentions of the bot and replies to it."""
        if message.chat.type == "private":
            return True
        if message.reply_to_message and message.reply_to_message.from_user:
            if message.reply_to_message.from_user.id == bot_id:
                return True
        entities = message.parse_entities() or message.parse_caption_entities()
        for entity, text in entities.items():
            if entity.type == MessageEntity.MENTION and text.lower() == f"@{bot_username.lower()}":
                return True
            if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
                return True
            if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
                # "/cmd" or "/cmd@this_bot"; "/cmd@other_bot" is for someone else
                _, _, at = text.partition("@")
                return not at or at.lower() == bot_username.lower()
        return False

    async def gate(self, update: Update, context: Context) -> None:
        """Runs before every handler: speaks the person's language from here on (the handlers run in this
        update's context); people outside the allowlist get one polite refusal, nothing else."""
        user = update.effective_user
        if user is not None:
            set_locale(await ready(await self.language_of(user)))
        else:
            set_locale(None)
        if user is None:
            # A channel's post has no person behind it: with an allowlist, only channels named in it.
            chat = update.effective_chat
            if update.channel_post is None or chat is None or self._open_to(chat.id):
                return
            log.info("telegram: refused channel %s (not in MEDIABOT_TELEGRAM_ALLOWED_USERS)", chat.id)
            raise ApplicationHandlerStop
        if self.allowed(user):
            # A banned person (core.admin, shared by every process) reads one sentence, whatever they send.
            text = await self.services.admin.banned(SOURCE, str(user.id))
            if text is None:
                return
        else:
            text = texts.NOT_ALLOWED.format(user_id=user.id)
        if update.inline_query is not None:
            await update.inline_query.answer([], cache_time=60, is_personal=True)
        elif update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
        elif update.message is not None and self.addressed(
            update.message, context.bot.id, context.bot.username
        ):
            await self.answer(update, text)
        log.info("telegram: refused user %s (banned, or not in MEDIABOT_TELEGRAM_ALLOWED_USERS)", user.id)
        raise ApplicationHandlerStop

    async def language_of(self, user: User) -> str:
        """The person's pick (/language), else their Telegram app's language."""
        key = str(user.id)
        cached = self._languages.get(key)
        if cached is None or cached[0] < time.monotonic():
            try:
                picked = (await self.services.prefs.get(SOURCE, key)).language
            except Exception:  # noqa: BLE001 - the database down must not silence the bot: the app's language
                log.warning("telegram: language of user %s not read", key, exc_info=True)
                picked = None
            cached = (time.monotonic() + LANGUAGE_TTL_S, picked)
            self._languages[key] = cached
        return negotiate(cached[1], user.language_code)

    # -- messages and commands ----------------------------------------------------------------------------

    @replies_errors
    async def on_message(self, update: Update, context: Context) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        addressed = self.addressed(message, context.bot.id, context.bot.username)
        if not addressed and not await self.groups.takes_every_link(message):
            return
        text = message.text or message.caption or ""
        if await self._clip_of_delivered(message, text):
            return
        if message.chat.type != "private" and not links(message, text):
            return  # "thanks" in reply to the bot, in a group: not worth an error message
        prefs = await self.services.prefs.get(SOURCE, str(message.from_user.id))
        own = links(message, text, replied=False)
        if prefs.ask_format and own:
            await self.submit.offer_formats(message, own, Ask.default(prefs))
            return
        await self.submit.handle_links(message, text, Ask.default(prefs))

    @replies_errors
    async def audio(self, update: Update, context: Context) -> None:
        await self._kind_command(update, context, "audio", texts.NO_LINK_AUDIO)

    @replies_errors
    async def video(self, update: Update, context: Context) -> None:
        await self._kind_command(update, context, "video", texts.NO_LINK_VIDEO)

    async def _kind_command(self, update: Update, context: Context, kind: str, usage: str) -> None:
        message = update.message
        assert message is not None and message.from_user is not None
        text = " ".join(context.args or [])
        if not links(message, text):
            await self.answer(update, usage)
            return
        prefs = await self.services.prefs.get(SOURCE, str(message.from_user.id))
        await self.submit.handle_links(message, text, Ask.default(prefs, kind))

    @replies_errors
    async def clip(self, update: Update, context: Context) -> None:
        """/clip LINK 1:20-1:45: that part of the media."""
        await self._cut_command(update, context, texts.CLIP_USAGE, clip=True)

    @replies_errors
    async def gif(self, update: Update, context: Context) -> None:
        """/gif LINK 1:20-1:25: that part as an animation (no sound)."""
        await self._cut_command(update, context, texts.GIF_USAGE, clip=True, animation=True)

    @replies_errors
    async def chapters(self, update: Update, context: Context) -> None:
        """/chapters LINK: each chapter as a file of its own."""
        await self._cut_command(update, context, texts.CHAPTERS_USAGE, split_chapters=True)

    async def _cut_command(
        self, update: Update, context: Context, usage: str, *, clip: bool = False, animation: bool = False,
        split_chapters: bool = False,
    ) -> None:  # fmt: skip
        message = update.message
        assert message is not None and message.from_user is not None
        text = " ".join(context.args or [])
        ranged = find_range_after_link(text) if clip else None
        if not links(message, text) or (clip and ranged is None):
            await self.answer(update, usage)
            return
        prefs = await self.services.prefs.get(SOURCE, str(message.from_user.id))
        ask = replace(
            Ask.default(prefs, "video" if animation else None),
            section=ranged.section if ranged else None, animation=animation, split_chapters=split_chapters,
            sponsorblock=None,  # the sponsor default is for plain links: a clip or a split is one cut already
        )  # fmt: skip
        await self._request(message, ranged.url if ranged else links(message, text)[0], ask)

    async def _clip_of_delivered(self, message: Message, text: str) -> bool:
        """A reply "1:20-1:45" to a video the bot sent: that part of it. False when the message is not one."""
        original = message.reply_to_message
        sent = (original.video or original.audio or original.document) if original is not None else None
        if sent is None or original is None or not (original.from_user and original.from_user.is_bot):
            return False
        try:
            section = parse_section(text)
        except InvalidSection:
            return False
        found = await self.services.deliveries.link_of(SOURCE, sent.file_id)
        if found is None:
            await self.answer_message(message, texts.CLIP_UNKNOWN_FILE)
            return True
        url, kind = found
        assert message.from_user is not None
        prefs = await self.services.prefs.get(SOURCE, str(message.from_user.id))
        await self._request(
            message, url, replace(Ask.default(prefs, kind), section=section, sponsorblock=None)
        )
        return True

    async def _request(self, message: Message, url: str, ask: Ask) -> None:
        try:
            await self.submit.request(message, url, ask)
        except Refused as exc:
            await self.answer_message(message, str(exc))

    async def answer_message(self, message: Message, text: str) -> None:
        await self.submit.reply(message, text)

    async def help(self, update: Update, context: Context) -> None:
        if context.args == ["settings"]:  # from inline mode's "turn it on in /settings" button
            await self.settings_menu(update, context)
            return
        await self.answer(update, texts.help_text(self.settings.telegram_upload_limit_bytes))

    async def unknown_command(self, update: Update, context: Context) -> None:
        await self.answer(update, texts.UNKNOWN_COMMAND)

    @replies_errors
    async def settings_menu(self, update: Update, context: Context) -> None:
        assert update.effective_user is not None
        prefs = await self.services.prefs.get(SOURCE, str(update.effective_user.id))
        await self.answer(
            update, texts.settings_text(prefs.kind, prefs.quality, prefs.ask_format, prefs.sponsorblock),
            reply_markup=texts.settings_keyboard(
                prefs.kind, prefs.quality, prefs.ask_format, prefs.sponsorblock, prefs.inline
            ),
        )  # fmt: skip

    @replies_errors
    async def language(self, update: Update, context: Context) -> None:
        """/language: the choice as buttons; /language de: that one (an unknown code: English, with a note)."""
        assert update.effective_user is not None
        user_id = str(update.effective_user.id)
        args = list(context.args or [])
        prefs = await self.services.prefs.get(SOURCE, user_id)
        if not args:
            await self.answer(
                update, texts.LANGUAGE_PROMPT, reply_markup=texts.language_keyboard(prefs.language)
            )
            return
        code = args[0]
        locale = supported(code)
        if locale is None:
            with use(ENGLISH):
                await self.answer(
                    update,
                    texts.language_unknown(code[:16]),
                    reply_markup=texts.language_keyboard(prefs.language),
                )
            return
        await self._pick_language(user_id, await ready(locale))
        await self.answer(update, texts.language_saved(locale))

    async def _pick_language(self, user_id: str, locale: str | None) -> None:
        await self.services.prefs.set(SOURCE, user_id, language=locale or "")
        self._languages[user_id] = (time.monotonic() + LANGUAGE_TTL_S, locale)
        set_locale(locale)

    async def language_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        choice = query.data.partition(":")[2]
        user_id = str(query.from_user.id)
        if choice == "menu":
            prefs = await self.services.prefs.get(SOURCE, user_id)
            await query.answer()
            await self.answer(
                update, texts.LANGUAGE_PROMPT, reply_markup=texts.language_keyboard(prefs.language)
            )
            return
        locale = None if choice == "auto" else supported(choice)
        if locale is None and choice != "auto":
            await query.answer(texts.CHOICE_STALE)
            return
        await self._pick_language(user_id, locale and await ready(locale))
        if locale is None:
            set_locale(query.from_user.language_code)
        await query.answer(texts.language_saved(locale))
        try:
            await query.edit_message_text(texts.LANGUAGE_PROMPT, reply_markup=texts.language_keyboard(locale))
        except TelegramError as exc:
            log.debug("language message not updated: %s", exc)

    @replies_errors
    async def subs(self, update: Update, context: Context) -> None:
        """/subs: show; /subs en,de: default languages for videos; /subs off; /subs en LINK: that link only."""
        message = update.message
        assert message is not None and message.from_user is not None
        user_id = str(message.from_user.id)
        args = list(context.args or [])
        prefs = self.services.prefs
        if not args:
            await self.answer(update, texts.subs_status((await prefs.get(SOURCE, user_id)).subtitles))
            return
        first, rest = args[0], " ".join(args[1:])
        if extract_urls(first):
            await self.answer(update, texts.SUBS_USAGE)
            return
        langs = () if first.lower() == "off" else tuple(first.replace(";", ",").split(","))
        _kind, langs = check_choices(None, langs)  # a typo is one sentence before anything is saved or queued
        if not rest:
            saved = await prefs.set(SOURCE, user_id, subtitles=langs)
            await self.answer(update, texts.subs_saved(saved.subtitles))
            return
        if not links(message, rest, replied=False):
            await self.answer(update, texts.SUBS_USAGE)
            return
        current = await prefs.get(SOURCE, user_id)
        # Subtitles are embedded in a video: this link comes as one whatever the default kind.
        await self.submit.handle_links(message, rest, Ask("video", current.quality, subtitles=langs))

    @replies_errors
    async def subscribe(self, update: Update, context: Context) -> None:
        await self.answer(update, await self.following.subscribe(update, list(context.args or [])))

    @replies_errors
    async def subscriptions(self, update: Update, context: Context) -> None:
        await self.answer(update, await self.following.subscriptions(update))

    @replies_errors
    async def unsubscribe(self, update: Update, context: Context) -> None:
        await self.answer(update, await self.following.unsubscribe(update, list(context.args or [])))

    @replies_errors
    async def status(self, update: Update, context: Context) -> None:
        assert update.effective_user is not None
        active = await self.services.jobs.active_requests(SOURCE, str(update.effective_user.id))
        if not active:
            await self.answer(update, texts.NOTHING_RUNNING)
            return
        await self.answer(update, texts.status_list([(r.id, j) for r, j in reversed(active)]))

    @replies_errors
    async def cancel_all(self, update: Update, context: Context) -> None:
        assert update.effective_user is not None
        user_id = str(update.effective_user.id)
        cancelled = 0
        for request, _job in await self.services.jobs.active_requests(SOURCE, user_id):
            done = await self._cancel(request.id, user_id)
            if done is None:
                continue
            cancelled += 1
            if done.request.parent_id is not None:
                # A playlist item or a copy being made: the parent's delivery tells the story on its message.
                if done.request.status == "cancelled":
                    self.conductor.children_cancelled(done.request.parent_id, 1)
            elif done.request.status == "cancelled":
                await self._show_cancelled(done.request)
        await self.answer(update, texts.cancelled_count(cancelled) if cancelled else texts.NOTHING_TO_CANCEL)

    # -- buttons ------------------------------------------------------------------------------------------

    async def cancel_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        request_id = query.data.partition(":")[2]
        try:
            done = await self._cancel(request_id, str(query.from_user.id))
        except NotFound:
            await query.answer(_("Only the person who asked can cancel this download."))
            return
        if done is None:
            await query.answer(texts.ALREADY_FINISHED)
        elif done.request.status == "cancelled":
            await query.answer(texts.CANCELLED)
            await self._show_cancelled(done.request)
        else:
            # The request itself had finished: a playlist whose remaining items stop, or a copy being made.
            playlist = self.conductor.children_cancelled(done.request.id, done.children)
            await query.answer(texts.cancelled_items(done.children) if playlist else texts.CANCELLED)

    async def _cancel(self, request_id: str, user_id: str) -> Cancelled | None:
        """Cancel one of the user's requests and those made on its behalf; None when nothing was left to
        cancel."""
        active = {rid for rid, status in (await self._descendants(request_id)).items() if status == "active"}
        # The request's delivery sees it cancelled and leaves the story to us (`_show_cancelled`).
        request = await self.services.jobs.cancel(request_id, source=SOURCE, user_id=user_id)
        children = 0
        if active:
            after = await self._descendants(request_id)
            children = sum(1 for rid in active if after.get(rid) == "cancelled")
        if request.status != "cancelled" and not children:
            return None
        return Cancelled(request, children)

    async def _show_cancelled(self, request: RequestView) -> None:
        """The person cancelled: stop following and say so on the progress message."""
        reply = await self.conductor.stop(request.id) or self.chat.reply_for(request)
        if isinstance(reply, InlineReply):  # an inline message: it says so itself
            await reply.conclude(texts.CANCELLED)
            return
        if reply is None or reply.target.progress_id is None:
            return
        with contextlib.suppress(TelegramError):
            await self.api.edit(reply.target, texts.CANCELLED, keyboard=None)

    async def _descendants(self, request_id: str) -> dict[str, str]:
        """The status of each request made on behalf of `request_id`, as deep as a cancel reaches: playlist
        items (or a copy being made to fit), and the copies being made for items still being delivered."""
        jobs = self.services.jobs
        found: dict[str, str] = {}
        for request, _job in await jobs.children(request_id):
            found[request.id] = request.status
            if request.status == "done" and request.delivered_at is None:
                found.update({r.id: r.status for r, _job in await jobs.children(request.id)})
        return found

    async def settings_button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        _prefix, field, value = query.data.split(":", 2)
        user_id = str(query.from_user.id)
        try:
            if field == "kind":
                prefs = await self.services.prefs.set(SOURCE, user_id, kind=value)
            elif field == "ask":
                prefs = await self.services.prefs.set(SOURCE, user_id, ask_format=value == "1")
            elif field == "inline":
                prefs = await self.services.prefs.set(SOURCE, user_id, inline=value == "1")
            elif field == "sb":
                prefs = await self.services.prefs.set(SOURCE, user_id, sponsorblock=value)
            else:
                prefs = await self.services.prefs.set(SOURCE, user_id, quality=value)
        except MediabotError as exc:
            await query.answer(_(exc.message))
            return
        await query.answer(_("Saved."))
        try:
            await query.edit_message_text(
                texts.settings_text(prefs.kind, prefs.quality, prefs.ask_format, prefs.sponsorblock),
                reply_markup=texts.settings_keyboard(
                    prefs.kind, prefs.quality, prefs.ask_format, prefs.sponsorblock, prefs.inline
                ),
            )
        except TelegramError as exc:
            log.debug("settings message not updated: %s", exc)

    async def format_button(self, update: Update, context: Context) -> None:
        assert update.callback_query is not None
        await self.submit.format_chosen(update.callback_query)

    # -- answering ----------------------------------------------------------------------------------------

    async def answer(self, update: Update, text: str, **kwargs: Any) -> None:
        if update.effective_message is not None:
            await self.submit.reply(update.effective_message, text, **kwargs)
        elif update.effective_chat is not None:
            await update.effective_chat.send_message(text, link_preview_options=NO_PREVIEW, **kwargs)

    async def on_error(self, update: object, context: Context) -> None:
        """Anything unexpected: logged with the update id, answered with a generic apology."""
        update_id = update.update_id if isinstance(update, Update) else None
        log.error(
            "telegram update %s failed: %s", update_id, type(context.error).__name__, exc_info=context.error
        )
        if not isinstance(update, Update):
            return
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(texts.APOLOGY)
            elif update.effective_message is not None:
                await self.answer(update, texts.APOLOGY)
        except TelegramError as exc:
            log.warning("telegram update %s: apology not sent either (%s)", update_id, type(exc).__name__)
