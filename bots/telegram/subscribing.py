"""/subscribe LINK, /subscriptions, /unsubscribe N: channels and playlists followed into this chat (a private
chat, a group, or a channel the bot posts in). New entries arrive like any download, without a message to
reply to (bots.subscriptions delivers them)."""

from __future__ import annotations

from typing import Any

from telegram import Update

from bots.telegram.api import NO_PREVIEW, TelegramApi
from bots.telegram.submitting import SOURCE
from core.bootstrap import Services
from core.i18n import N_, _, current, ngettext, use
from core.net import extract_urls
from core.subscriptions.service import SubscribeRequest, SubscriptionView

SUBSCRIBE_USAGE = N_(
    'Send /subscribe followed by a channel or playlist link (add "audio" for sound only): every new video '
    "is then sent here."
)
NONE_HERE = N_("Nothing is followed in this chat. Send /subscribe LINK to follow a channel or playlist.")
UNSUBSCRIBE_USAGE = N_("Send /unsubscribe followed by the number from /subscriptions.")
MAX_LISTED = 50


def place_of(chat_id: int) -> str:
    return f"{SOURCE}:{chat_id}"


def name_of(sub: SubscriptionView) -> str:
    return sub.title or sub.url


def listing(subs: list[SubscriptionView]) -> str:
    lines = [_("Followed in this chat:")]
    for n, sub in enumerate(subs[:MAX_LISTED], 1):
        state = " · " + _("paused (send /subscribe with its link to resume)") if sub.paused else ""
        kind = " · " + _("audio") if sub.kind == "audio" else ""
        lines.append(f"{n}. {name_of(sub)}{kind}{state}")
    lines.append(_("Stop one with /unsubscribe N."))
    return "\n".join(lines)


def paused_text(sub: SubscriptionView) -> str:
    why = f" ({sub.last_error})" if sub.last_error else ""
    return ngettext(
        "Following {name} is paused: it could not be read {n} time in a row{why}. Send /subscribe with its "
        "link to try again.",
        "Following {name} is paused: it could not be read {n} times in a row{why}. Send /subscribe with its "
        "link to try again.",
        sub.failures,
    ).format(name=name_of(sub), n=sub.failures, why=why)


class Subscribing:
    """The subscription commands of the Telegram bot."""

    def __init__(self, services: Services, api: TelegramApi) -> None:
        self.services = services
        self.api = api

    async def subscribe(self, update: Update, args: list[str]) -> str:
        chat = update.effective_chat
        assert chat is not None
        urls = extract_urls(" ".join(args))
        if not urls:
            return _(SUBSCRIBE_USAGE)
        user = update.effective_user
        # In a channel posts come from the channel itself: it owns the subscription.
        owner = str(user.id) if user is not None else str(chat.id)
        kind = "audio" if any(a.lower() == "audio" for a in args) else "video"
        quality = "best"
        if user is not None and kind == "video":
            prefs = await self.services.prefs.get(SOURCE, owner)
            kind, quality = ("video", prefs.quality) if prefs.kind == "video" else ("audio", "best")
        message = update.effective_message
        thread = message.message_thread_id if message is not None and message.is_topic_message else None
        sub, created = await self.services.subscriptions.subscribe(
            SubscribeRequest(
                text=urls[0], source=SOURCE, user_id=owner, place=place_of(chat.id), kind=kind, quality=quality,
                target={"chat_id": chat.id, "thread_id": thread, "locale": current()},
            )
        )  # fmt: skip
        audio = sub.kind == "audio"
        if created:
            said = (
                _("Subscribed: the sound of every new video of {url} will be sent here. /subscriptions lists what this chat follows.")
                if audio
                else _("Subscribed: every new video of {url} will be sent here. /subscriptions lists what this chat follows.")
            )  # fmt: skip
            return said.format(url=sub.url)
        said = (
            _("This chat already follows {name}; the sound of every new video will be sent here.")
            if audio
            else _("This chat already follows {name}; every new video will be sent here.")
        )
        return said.format(name=name_of(sub))

    async def subscriptions(self, update: Update) -> str:
        chat = update.effective_chat
        assert chat is not None
        subs = await self.services.subscriptions.list(source=SOURCE, place=place_of(chat.id))
        return listing(subs) if subs else _(NONE_HERE)

    async def unsubscribe(self, update: Update, args: list[str]) -> str:
        chat = update.effective_chat
        assert chat is not None
        subs = await self.services.subscriptions.list(source=SOURCE, place=place_of(chat.id))
        if not subs:
            return _(NONE_HERE)
        if len(args) != 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= len(subs):
            return _(UNSUBSCRIBE_USAGE) + "\n\n" + listing(subs)
        sub = subs[int(args[0]) - 1]
        await self.services.subscriptions.unsubscribe(sub.id, source=SOURCE, place=place_of(chat.id))
        return _("Unsubscribed from {name}: nothing more from it will be sent here.").format(
            name=name_of(sub)
        )

    async def tell(self, sub: SubscriptionView) -> None:
        """A paused subscription's chat hears it once."""
        target: dict[str, Any] = sub.target
        with use(target.get("locale")):  # the language of whoever subscribed
            text = paused_text(sub)
        await self.api.bot.send_message(
            target["chat_id"], text, message_thread_id=target.get("thread_id"), link_preview_options=NO_PREVIEW,
        )  # fmt: skip
