"""The format picker's buttons. Telegram gives a button 64 bytes of callback data and the bot keeps no memory
of the question: the keyboard message replies to the person's message, whose text holds the link, and each
button's data names which link of that message and which format ("fmt:0:v:240p"). So a keyboard still works
after a restart, and an old or forged press is just data to check."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bots.telegram.texts import MAX_FORMAT_BUTTONS
from core.i18n import N_, _
from core.jobs.formats import MediaFormats

log = logging.getLogger(__name__)

PREFIX = "fmt"
MAX_CALLBACK_DATA = 64  # bytes, Telegram's limit
PATTERN = rf"^{PREFIX}:"
AUDIO_ONLY = N_("Audio only")
BEST = N_("Best")


@dataclass(frozen=True)
class Pick:
    """One press: the link's position in the message, the kind, and the format (None: the kind's best)."""

    link: int
    kind: str  # video | audio
    format_id: str | None


def encode(pick: Pick) -> str | None:
    """The button's callback data; None when it would not fit Telegram's 64 bytes (a very long format id)."""
    kind = "a" if pick.kind == "audio" else "v"
    data = f"{PREFIX}:{pick.link}:{kind}:{pick.format_id or ''}"
    return data if len(data.encode()) <= MAX_CALLBACK_DATA else None


def decode(data: str) -> Pick | None:
    """The press, or None when the data is not one of ours (an old keyboard layout, a forged press)."""
    parts = data.split(":", 3)
    if len(parts) != 4 or parts[0] != PREFIX or not parts[1].isdigit() or parts[2] not in ("a", "v"):
        return None
    return Pick(int(parts[1]), "audio" if parts[2] == "a" else "video", parts[3] or None)


def keyboard(link: int, formats: MediaFormats) -> InlineKeyboardMarkup | None:
    """One button per real format (its label, with the size), then "Audio only" and "Best"; None when the link
    offers nothing to choose between."""
    rows: list[list[InlineKeyboardButton]] = []
    for choice in formats.formats[:MAX_FORMAT_BUTTONS]:
        data = encode(Pick(link, choice.kind, choice.format_id))
        if data is None:
            log.info("telegram: format %r does not fit in a button's data; not offered", choice.format_id)
            continue
        rows.append([InlineKeyboardButton(choice.label, callback_data=data)])
    if not rows:
        return None
    rows.append(
        [
            InlineKeyboardButton(_(AUDIO_ONLY), callback_data=f"{PREFIX}:{link}:a:"),
            InlineKeyboardButton(_(BEST), callback_data=f"{PREFIX}:{link}:v:"),
        ]
    )
    return InlineKeyboardMarkup(rows)


def label_of(markup: object, data: str) -> str | None:
    """The text of the pressed button, read back from the keyboard the press came from."""
    for row in getattr(markup, "inline_keyboard", ()) or ():
        for button in row:
            if getattr(button, "callback_data", None) == data:
                return str(button.text)
    return None
