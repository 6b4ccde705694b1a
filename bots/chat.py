"""What the conductor (bots/conductor.py) asks of a chat platform.

A platform implements two small things: a `ChatAdapter` for the bot process (which platform, its chat
pacing, the answer for a stored request) and a `ChatReply` per request, which knows where that request is
answered (a Telegram chat and progress message, a Discord interaction and channel) and how to say each
thing the delivery flow needs said there. The flow itself (following the job, the planner's order of file,
copy and link, playlists, subtitles, cancelling, retrying) is the conductor's and the same for every chat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from bots.playlist import Playlist
from bots.progress import ChatPacer
from core.delivery.planner import Destination
from core.i18n import N_, _
from core.jobs.views import JobView, RequestView

# What a progress message shows: its text, and whether the Cancel button is under it.
Screen = tuple[str, bool]

DOWNLOAD_FAILED = N_("The download failed.")


def why_failed(view: JobView) -> str:
    """A failed download's one sentence, the core's own (e.g. "This site is not supported.")."""
    return _(view.error.message if view.error and view.error.message else DOWNLOAD_FAILED)


class UploadFailed(Exception):
    """The platform did not take a file for a reason other than its size (the message says which): the
    file is stored, so a link answers instead."""


@dataclass(frozen=True)
class Parcel:
    """One file going out: the download's own, or a copy of it made to fit."""

    request: RequestView  # the request it answers (a playlist item's own request for an item)
    sent: JobView  # the job whose file goes out
    original: JobView  # the download it answers (the same job unless `sent` is a copy)
    note: str | None = None  # the planner's sentence about the copy ("Sent at 240p to fit ...")
    full_link: str | None = None  # a link to the original's file, sent with a copy
    item: str | None = None  # the playlist item's title; None for a request's own file


class ChatReply(Protocol):
    """One request's answer in a chat: where its progress shows and where its results go.

    Methods that send raise the platform's own errors; `closed` and `retry_after` tell the conductor
    what they mean."""

    chat: str  # the chat whose message budget the progress edits share
    shown: Screen | None  # what the progress message already shows (sent with the request), if anything

    def stored(self) -> dict[str, Any]:
        """The target as it is to be stored with the request (what a restarted bot answers from)."""
        ...

    def destination(self) -> Destination:
        """Where files go and how big they may be, as the planner sees it."""
        ...

    # -- the progress message ------------------------------------------------------------------------

    def progress(self, view: JobView) -> Screen:
        """A download's (or a copy's) state while it runs."""
        ...

    def uploading(self, view: JobView) -> Screen | None:
        """What shows while the file is sent; None: the progress message just stops changing."""
        ...

    def listing(self, playlist: Playlist) -> Screen:
        """A playlist's items and how each went out (its summary once `playlist.finished`)."""
        ...

    async def show(self, screen: Screen) -> float | None:
        """Put `screen` on the progress message (sending one when there is none yet): None when shown or
        pointless, else the seconds to wait before showing the newest screen."""
        ...

    # -- results ---------------------------------------------------------------------------------------

    async def send_file(self, parcel: Parcel) -> None:
        """Send the file (with what the platform shows beside it: thumbnail, details, the copy's note and
        full-quality link). Raises core.planner.Refused when the platform refuses it as too large,
        UploadFailed when it fails for another reason worth answering with a link."""
        ...

    async def send_link(self, parcel: Parcel, url: str, *, refused: bool, failed: bool) -> None:
        """A download link instead of the file: no copy fits (`parcel.note` says so), the platform refused
        the file as too large (`refused`), or the upload failed otherwise (`failed`)."""
        ...

    async def send_subtitles(self, parcel: Parcel) -> None:
        """After the file or link: the subtitle files made for it and the languages it lacks (where they
        did not go with the file already)."""
        ...

    async def failed(self, view: JobView, sentence: str, item: str | None = None) -> None:
        """The download (or a playlist item) could not be delivered: `sentence` says why."""
        ...

    async def cancelled(self, view: JobView) -> None:
        """The copy being made (or the download) was cancelled: nothing went out."""
        ...

    async def done(self, view: JobView) -> None:
        """Everything went out: the progress message makes way for the answer."""
        ...

    async def conclude(self, text: str) -> None:
        """The last word on the progress message (a message of its own when there is none any more)."""
        ...

    async def apologize(self) -> None:
        """Something unexpected broke the delivery: say sorry where the answer would have been."""
        ...

    # -- what a failure means --------------------------------------------------------------------------

    def closed(self, exc: Exception) -> bool:
        """True when `exc` says the chat takes no messages from the bot any more (blocked, removed)."""
        ...

    def retry_after(self, exc: Exception) -> float | None:
        """Seconds after which a delivery that failed with `exc` is worth trying again; None: it is not."""
        ...


R = TypeVar("R", bound=ChatReply)
R_co = TypeVar("R_co", bound=ChatReply, covariant=True)


class ChatAdapter(Protocol[R_co]):
    """A chat platform as the bot process's conductor sees it."""

    platform: str  # the requests' source ("telegram", "discord")
    pacer: ChatPacer  # spaces the bot's edits per chat
    edit_interval_s: float  # between two edits of one progress message

    def reply_for(self, request: RequestView) -> R_co | None:
        """The answer to a stored request; None when its target lacks what a delivery needs."""
        ...
