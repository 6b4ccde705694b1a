"""Starting downloads from a Telegram message: the links in it, the per-person limits, an answer from
Telegram's own copy when it holds the file already, the format picker's questions and answers, and the
submit, after which the conductor follows the request."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Any

from telegram import CallbackQuery, Message, MessageEntity
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bots.conductor import Conductor
from bots.telegram import picker, texts
from bots.telegram.api import Target, TelegramApi
from bots.telegram.groups import PickerTimers
from bots.telegram.reply import TelegramChat, TelegramReply
from core.bootstrap import Services
from core.cuts.sections import Section, find_range_after_link
from core.cuts.sponsorblock import SponsorChoice
from core.delivery.filecache import variant_key
from core.errors import InvalidUrl, MediabotError
from core.i18n import current
from core.jobs.choices import SubmitRequest
from core.jobs.derived import derivation, sponsor_choice
from core.net import extract_url, extract_urls
from core.prefs import Prefs

log = logging.getLogger(__name__)

SOURCE = "telegram"
MAX_LINKS_PER_MESSAGE = 10
HOUR_S = 3600


class Refused(Exception):
    """A per-user limit said no; the message is the sentence to send."""


@dataclass(frozen=True)
class Ask:
    """What one link is to be downloaded as."""

    kind: str
    quality: str
    format_id: str | None = None  # a format the link offers (from the picker); None: by kind and quality
    subtitles: tuple[str, ...] = ()
    # A clip (/clip, a range after the link, a reply with a range), as an animation (/gif); a split by
    # chapters (/chapters); sponsor segments removed or marked.
    section: Section | None = None
    animation: bool = False
    split_chapters: bool = False
    sponsorblock: SponsorChoice | None = None

    @property
    def variant(self) -> str | None:
        derived = derivation(
            self.section, animation=self.animation, split_chapters=self.split_chapters,
            sponsorblock=self.sponsorblock,
        )  # fmt: skip
        return derived.variant if derived is not None else None

    @classmethod
    def default(cls, prefs: Prefs, kind: str | None = None) -> Ask:
        """The person's defaults; their subtitle languages go with videos only (a song has none to embed), and
        their sponsor choice (/settings) with every plain link."""
        kind = kind or prefs.kind
        sponsors = sponsor_choice(prefs.sponsorblock if prefs.sponsorblock != "keep" else None)
        return cls(
            kind, prefs.quality, subtitles=prefs.subtitles if kind == "video" else (), sponsorblock=sponsors
        )


def links(message: Message, text: str, *, replied: bool = True) -> list[str]:
    """Links in the text (and hidden behind link text); else (`replied`) in the message it replies to."""
    urls = extract_urls(text)
    for entity in list(message.entities or []) + list(message.caption_entities or []):
        if entity.type == MessageEntity.TEXT_LINK and entity.url and entity.url not in urls:
            urls.append(entity.url)
    original = message.reply_to_message
    if (
        replied
        and not urls
        and original is not None
        and not (original.from_user and original.from_user.is_bot)
    ):
        urls = extract_urls(original.text or original.caption or "")
    return urls


def target_of(message: Message) -> Target:
    """Answers to `message`: in its chat (and topic), replying to it."""
    thread_id = message.message_thread_id if message.is_topic_message else None
    return Target(message.chat_id, message.message_id, thread_id=thread_id, locale=current())


class Submitter:
    def __init__(
        self, services: Services, api: TelegramApi, conductor: Conductor[TelegramReply], chat: TelegramChat
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.api = api
        self.conductor = conductor
        self.chat = chat
        # Format keyboards being answered right now (chat, message): a double press submits once.
        self._choosing: set[tuple[int, int]] = set()
        self.pickers = PickerTimers(api)  # a group's pickers go away after a while

    async def reply(self, message: Message, text: str, **kwargs: Any) -> None:
        await self.api.reply(target_of(message), text, **kwargs)

    async def handle_links(self, message: Message, text: str, ask: Ask) -> None:
        urls = links(message, text)
        if not urls:
            extract_url(text)  # raises InvalidUrl with the reason a person understands
            raise InvalidUrl()
        # "LINK 1:20-1:45": a clip of that link (InvalidSection, a sentence, for a range that can't be one).
        ranged = find_range_after_link(text) if ask.section is None else None
        for url in urls[:MAX_LINKS_PER_MESSAGE]:
            try:
                clipped = ranged is not None and ranged.url == url
                await self.request(
                    message, url, replace(ask, section=ranged.section, sponsorblock=None) if clipped else ask
                )
            except Refused as exc:
                await self.reply(message, str(exc))
                return
            except MediabotError as exc:
                await self.reply(message, exc.message)
        if len(urls) > MAX_LINKS_PER_MESSAGE:
            await self.reply(message, texts.TOO_MANY_LINKS.format(n=MAX_LINKS_PER_MESSAGE))

    # -- the format picker --------------------------------------------------------------------------------

    async def offer_formats(self, message: Message, urls: list[str], fallback: Ask) -> None:
        """Answer each link with its real formats as buttons. A link that can't be probed gets the probe's
        sentence (its download would fail the same way); one with nothing to choose between (a playlist,
        whose items pick their own) is downloaded as the person's default."""
        for index, url in enumerate(urls[:MAX_LINKS_PER_MESSAGE]):
            with contextlib.suppress(TelegramError):
                await message.get_bot().send_chat_action(
                    message.chat_id, ChatAction.TYPING, message_thread_id=message.message_thread_id
                )
            try:
                found = await self.services.jobs.formats(url)
                markup = picker.keyboard(index, found) if found.playlist is None else None
                if markup is None:
                    await self.request(message, url, fallback)
                else:
                    asked = await self.api.reply(
                        target_of(message), texts.format_prompt(found), reply_markup=markup
                    )
                    self.pickers.offered(asked)
            except Refused as exc:
                await self.reply(message, str(exc))
                return
            except MediabotError as exc:
                await self.reply(message, exc.message)
        if len(urls) > MAX_LINKS_PER_MESSAGE:
            await self.reply(message, texts.TOO_MANY_LINKS.format(n=MAX_LINKS_PER_MESSAGE))

    async def format_chosen(self, query: CallbackQuery) -> None:
        """A format chosen: the keyboard message becomes the download's progress message."""
        assert query.data is not None
        pick = picker.decode(query.data)
        keyboard = query.message if isinstance(query.message, Message) else None
        asked = keyboard.reply_to_message if keyboard is not None else None
        urls = links(asked, asked.text or asked.caption or "", replied=False) if asked else []
        if pick is None or keyboard is None or asked is None or pick.link >= len(urls):
            await query.answer(texts.CHOICE_STALE)
            return
        if asked.from_user is None or asked.from_user.id != query.from_user.id:
            await query.answer(texts.CHOICE_NOT_YOURS)
            return
        chosen = (keyboard.chat_id, keyboard.message_id)
        self.pickers.chosen(*chosen)  # it becomes the progress message: not to be removed by its timer
        if chosen in self._choosing:
            await query.answer()  # a second press while the first is being submitted
            return
        self._choosing.add(chosen)
        try:
            await query.answer()
            prefs = await self.services.prefs.get(SOURCE, str(query.from_user.id))
            subtitles = prefs.subtitles if pick.kind == "video" else ()
            ask = replace(
                Ask.default(prefs, pick.kind), quality="best", format_id=pick.format_id, subtitles=subtitles
            )
            try:
                await self.request(asked, urls[pick.link], ask, progress_id=keyboard.message_id)
            except (Refused, MediabotError) as exc:
                sentence = str(exc) if isinstance(exc, Refused) else exc.message
                target = Target(keyboard.chat_id, asked.message_id, progress_id=keyboard.message_id)
                await self.api.edit(target, sentence, keyboard=None)
        finally:
            self._choosing.discard(chosen)

    # -- requests -----------------------------------------------------------------------------------------

    async def request(self, message: Message, url: str, ask: Ask, *, progress_id: int | None = None) -> None:
        """Submit one link (or answer it from Telegram's copy). `progress_id`: a message of the bot's that
        replies to `message` and becomes the progress message (the format picker's)."""
        assert message.from_user is not None
        user_id = str(message.from_user.id)
        settings, services = self.settings, self.services
        kind, quality = ask.kind, ask.quality
        target = target_of(message)
        # Telegram on iPhones plays H.264 only: chats ask for a video every phone plays (unless turned off).
        playable = settings.chat_playable
        key = variant_key(
            url, kind, quality, ask.format_id, ask.subtitles, playable=playable, variant=ask.variant
        )
        # With subtitles the job has more to send than the video (its .srt files, the languages it lacks):
        # only the delivery of the job knows them, so no answering from Telegram's copy here.
        cached = None if ask.subtitles else await services.deliveries.get(SOURCE, key)
        # Banned (core.admin): one sentence, and nothing answered from Telegram's copy either.
        per_hour = (await services.admin.admit(SOURCE, user_id)).requests_per_hour
        if (
            cached is None
            and await services.jobs.count_active(SOURCE, user_id) >= settings.user_max_concurrent
        ):
            raise Refused(texts.too_many_running(settings.user_max_concurrent))
        allowed, retry_after = await services.limits.hit(f"telegram:hour:{user_id}", per_hour, HOUR_S)
        if not allowed:
            raise Refused(texts.rate_limited(per_hour, retry_after))
        if cached is not None:
            if await self.api.resend(cached, target):
                if progress_id is not None:
                    with contextlib.suppress(TelegramError):
                        await message.get_bot().delete_message(message.chat_id, progress_id)
                return
            await services.deliveries.forget(SOURCE, key)
        submission = await services.jobs.submit(
            SubmitRequest(
                text=url, source=SOURCE, user_id=user_id, kind=kind,  # type: ignore[arg-type]
                quality=quality, target=target.to_dict(), format_id=ask.format_id, subtitles=ask.subtitles,
                playable=playable, section=ask.section, animation=ask.animation,
                split_chapters=ask.split_chapters, sponsorblock=ask.sponsorblock,
            )
        )  # fmt: skip
        request, job = submission.request, submission.job
        if job.terminal:
            if progress_id is not None:
                target.progress_id = progress_id  # the delivery's last word goes there, or it is deleted
                await services.jobs.update_target(request.id, target.to_dict())
            self.conductor.follow(request, job, reply=self.chat.reply_to(request.id, target))
            return
        shown = (texts.progress_text(job), True)
        if progress_id is not None:
            target.progress_id = progress_id
            await self.api.edit(target, shown[0], keyboard=texts.cancel_keyboard(request.id))
        else:
            progress = await self.api.reply(target, shown[0], reply_markup=texts.cancel_keyboard(request.id))
            target.progress_id = progress.message_id
        await services.jobs.update_target(request.id, target.to_dict())
        self.conductor.follow(request, job, reply=self.chat.reply_to(request.id, target, shown))
