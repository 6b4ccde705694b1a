"""Discord's side of the delivery flow (bots/chat.py): a request is answered in the command's reply. The
reply shows the download's progress (with a Cancel button) and then becomes the answer: the file with an
embed (title, uploader, duration, size, thumbnail) and its subtitle files, a copy that fits with a link to
the full quality, a download link, or the error. A playlist's reply lists its items, each item is posted as
a follow-up of its own, and the list ends with a summary. Once the interaction's token is gone, results go
out as channel messages that mention the person (bots/discord/posting.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import discord

from bots.chat import Parcel, Screen
from bots.discord import texts
from bots.discord.embeds import media_embed
from bots.discord.posting import TRANSIENT, AttachmentRefused, Files, Posting, TokenGone
from bots.discord.target import Target
from bots.discord.views import cancel_view
from bots.files import LocalFiles
from bots.playlist import Playlist
from bots.progress import ChatPacer
from core.bootstrap import Services
from core.delivery.planner import Destination, Refused
from core.errors import MediabotError
from core.jobs.views import THUMBNAIL, JobView, RequestView, subtitle_asset

log = logging.getLogger(__name__)

PLATFORM = "discord"
RETRY_S = 5.0  # Discord unreachable or rate limited: try again after
MIB = 1024 * 1024
# The upload limits Discord is known to use (by plan and boost level): a refusal below the limit an
# interaction states steps down to the next one.
TIERS = (10 * MIB, 50 * MIB, 100 * MIB, 500 * MIB)
MAX_ATTACHMENTS = 10  # files in one Discord message


class DiscordChat:
    """Discord as the conductor sees it (a `ChatAdapter`)."""

    platform = PLATFORM

    def __init__(
        self, client: discord.Client, services: Services, *, edit_interval_s: float, chat_interval_s: float
    ) -> None:
        self.client = client
        self.services = services
        self.pacer = ChatPacer(chat_interval_s)
        self.edit_interval_s = edit_interval_s
        self.files = LocalFiles(services.jobs, services.settings.tmp_dir / PLATFORM)

    def reply_for(self, request: RequestView) -> DiscordReply | None:
        try:
            target = Target.from_dict(request.target)
        except ValueError as exc:
            log.error("request %s cannot be delivered (%s)", request.id, exc)
            return None
        return DiscordReply(self, request.id, target)


class DiscordReply:
    """One request's answer in Discord (a `ChatReply`)."""

    shown: Screen | None = None  # the reply says "thinking…" until the first progress edit

    def __init__(self, chat: DiscordChat, request_id: str, target: Target) -> None:
        self.jobs = chat.services.jobs
        self.settings = chat.services.settings
        self.files = chat.files
        self.request_id = request_id
        self.target = target
        self.out = Posting(chat.client, target, request_id)
        self.chat = target.channel_id or f"user:{target.user_id}"
        self.refused: int | None = None  # the smallest upload Discord refused as too large in this delivery

    def stored(self) -> dict[str, Any]:
        return self.target.to_dict()

    def destination(self) -> Destination:
        """The interaction's upload limit (it moves with plans and boosts), lowered for the rest of this
        delivery once Discord refused a file below it."""
        dest = Destination("Discord", self.target.filesize_limit, split=False, tiers=TIERS)
        return dest.lowered(self.refused) if self.refused is not None else dest

    # -- the reply while it shows progress -------------------------------------------------------------

    def progress(self, view: JobView) -> Screen:
        return texts.progress_text(view), True

    def uploading(self, view: JobView) -> Screen | None:
        return None

    def listing(self, playlist: Playlist) -> Screen:
        return texts.listing_text(playlist), not (playlist.finished or playlist.cancelled)

    async def show(self, screen: Screen) -> float | None:
        if not self.out.can_edit():
            return None
        text, button = screen
        try:
            await self.out.edit(
                content=text[: texts.MAX_CONTENT], view=cancel_view(self.request_id) if button else None
            )
        except TokenGone:
            return None
        except TRANSIENT as exc:
            log.warning(
                "Discord unreachable for request %s (%s); retrying", self.request_id, type(exc).__name__
            )
            return RETRY_S
        except discord.HTTPException as exc:
            if exc.status == 429:
                return RETRY_S
            log.warning(
                "Discord refused a progress edit for request %s: %s %s", self.request_id, exc.status, exc.code
            )
        return None

    # -- results ---------------------------------------------------------------------------------------

    async def _post(
        self, parcel: Parcel, content: str, files: Files = (), embed: discord.Embed | None = None
    ) -> None:
        """A playlist item's message is a follow-up of its own; anything else is the reply itself."""
        if parcel.item is not None:
            await self.out.followup(content, files, embed)
        else:
            await self.out.post(content, files, embed)

    async def send_file(self, parcel: Parcel) -> None:
        """The file, with the subtitle files made for the download attached while they fit the upload limit
        (else linked in the embed)."""
        sent, original = parcel.sent, parcel.original
        content = texts.done_text(sent)
        if parcel.note is not None:  # a copy that fits: say which, and link the full quality
            content = texts.fitted_text(sent, parcel.note, parcel.full_link, self._expires_at())
        async with self.files.path(sent.id, sent.filename or "media") as path:
            size = sent.filesize or (await asyncio.to_thread(path.stat)).st_size
            limit = self.destination().limit
            room = None if limit is None else limit - size
            async with self._subtitle_files(original, room) as (attached, linked):
                embed = await self._embed(sent, original, linked)
                content = texts.with_missing_subtitles(content, original)
                try:
                    await self._post(parcel, content, [(path, sent.filename or path.name), *attached], embed)
                except AttachmentRefused:
                    log.info("Discord refused %d bytes for request %s", size, self.request_id)
                    self.refused = min(size, self.refused or size)
                    raise Refused(size) from None

    async def send_link(self, parcel: Parcel, url: str, *, refused: bool, failed: bool) -> None:
        original = parcel.original
        text = texts.link_text(parcel.sent, url, self._expires_at(), parcel.note)
        embed = await self._embed(parcel.sent, original, [s.lang for s in original.subtitles])
        await self._post(parcel, texts.with_missing_subtitles(text, original), (), embed)

    async def send_subtitles(self, parcel: Parcel) -> None:
        """Nothing left to send: the subtitle files went with the file (or are linked in its embed)."""

    async def failed(self, view: JobView, sentence: str, item: str | None = None) -> None:
        if item is not None and view.status != "done":
            return  # the playlist's list shows the item's error
        content = f"{texts.title_of(view)}\n{sentence}"
        if item is not None:
            await self.out.followup(content)
        else:
            await self.out.post(content)

    async def cancelled(self, view: JobView) -> None:
        if self.out.can_edit():
            with contextlib.suppress(TokenGone):
                await self.out.edit(content=texts.cancelled_text(view), view=None)

    async def done(self, view: JobView) -> None:
        """Nothing to tidy: the reply became the answer."""

    async def conclude(self, text: str) -> None:
        await self.out.post(text)

    async def apologize(self) -> None:
        await self.out.post(texts.APOLOGY)

    def _expires_at(self) -> float:
        return time.time() + self.settings.link_ttl_s

    async def _embed(self, sent: JobView, source: JobView, linked: Sequence[str]) -> discord.Embed:
        """The delivery's embed: the thumbnail of the file sent (a copy's own, else the download's), and
        links to the subtitle files in `linked` (the ones not attached)."""
        thumbnail = await self._asset_link(sent, THUMBNAIL) or (
            await self._asset_link(source, THUMBNAIL) if source.id != sent.id else None
        )
        links = []
        for lang in linked:
            found = await self._asset_link(source, subtitle_asset(lang))
            if found is not None:
                links.append((lang, found))
        return media_embed(sent, source, thumbnail=thumbnail, subtitle_links=links)

    async def _asset_link(self, view: JobView, asset: str) -> str | None:
        """A signed link to one of a job's assets; None when it has none. A view that came through the event
        bus does not carry where its assets are stored: the job is read once more for those."""
        has = (
            view.thumbnail
            if asset == THUMBNAIL
            else any(subtitle_asset(s.lang) == asset for s in view.subtitles)
        )
        if not has:
            return None
        try:
            found = await self.jobs.asset_link(view, asset)
            return found if found is not None else await self.jobs.link(view.id, asset=asset)
        except MediabotError as exc:  # expired in between: the message goes out without it
            log.info("no %s link for job %s (%s)", asset, view.id, exc.code)
            return None

    @contextlib.asynccontextmanager
    async def _subtitle_files(
        self, view: JobView, room: int | None
    ) -> AsyncIterator[tuple[list[tuple[Path, str]], list[str]]]:
        """The job's .srt files to attach (as many as Discord takes in one message and `room` bytes allow),
        and the languages left to link instead."""
        attached: list[tuple[Path, str]] = []
        linked: list[str] = []
        async with contextlib.AsyncExitStack() as stack:
            for subtitle in view.subtitles:
                fits = room is None or subtitle.size <= room
                if not fits or len(attached) >= MAX_ATTACHMENTS - 1:
                    linked.append(subtitle.lang)
                    continue
                asset = subtitle_asset(subtitle.lang)
                path = await stack.enter_async_context(
                    self.files.optional(view.id, f"{subtitle.lang}.srt", asset=asset)
                )
                if path is None:
                    continue
                attached.append((path, subtitle.filename))
                if room is not None:
                    room -= subtitle.size
            yield attached, linked

    # -- what a failure means --------------------------------------------------------------------------

    def closed(self, exc: Exception) -> bool:
        # Posting falls back from the reply to the channel to a DM, and gives up on its own when none of
        # them takes the bot's messages.
        return False

    def retry_after(self, exc: Exception) -> float | None:
        if isinstance(exc, TokenGone):
            return 0.0  # again at once, now by channel message
        if isinstance(exc, (*TRANSIENT, discord.HTTPException)):
            return RETRY_S
        return 2.0  # anything else: soon, a few times, and after a restart
