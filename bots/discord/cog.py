"""The commands (`/download`, the "Download media" message command, `/cancel`) and what the Cancel button and
the format menu do, as one cog with the services injected.

`/download` takes subtitle languages, and with `choose_format` answers with a menu of the link's formats
(bots/discord/picker.py) instead of downloading at once. A download's delivery is the conductor's."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bots.conductor import Conductor
from bots.discord import picker, texts
from bots.discord.handling import COG
from bots.discord.posting import TRANSIENT, TokenGone
from bots.discord.reply import DiscordChat, DiscordReply
from bots.discord.target import Target
from bots.discord.texts import cancelled_text, listing_text, picker_text
from bots.playlist import Playlist
from core.bootstrap import Services
from core.cuts.sections import parse_section
from core.errors import MediabotError, NotFound
from core.i18n import N_, _, ngettext
from core.jobs.choices import SubmitRequest, check_choices
from core.jobs.derived import sponsor_choice
from core.jobs.views import JobView, RequestView
from core.net import extract_url, extract_urls
from core.words import human_duration

log = logging.getLogger(__name__)

SOURCE = "discord"
HOUR_S = 3600


@dataclass(frozen=True)
class Cut:
    """/download's start, end, split_chapters and sponsorblock options."""

    start: str | None = None
    end: str | None = None
    split_chapters: bool = False
    sponsorblock: str | None = None

    def choices(self) -> dict[str, Any]:
        """SubmitRequest's fields for them ("keep" asks for no sponsor cut, whatever the person's default).
        Raises InvalidSection (a sentence) for times that can't be a part."""
        section = None
        if self.start is not None or self.end is not None:
            section = parse_section(
                {k: v for k, v in (("start", self.start), ("end", self.end)) if v is not None}
            )
        choices: dict[str, Any] = {"section": section, "split_chapters": self.split_chapters,
                                   "sponsorblock": sponsor_choice(None if self.sponsorblock == "keep" else self.sponsorblock)}  # fmt: skip
        return {k: v for k, v in choices.items() if v}


class LimitReached(MediabotError):
    code = "rate_limited"
    default_message = N_("You have started too many downloads. Please wait a little.")


def split_languages(text: str | None) -> tuple[str, ...]:
    """ "en, de" or "en de" as ("en", "de")."""
    return tuple(lang for lang in re.split(r"[\s,;]+", text or "") if lang)


class Downloads(commands.Cog, name=COG):
    def __init__(
        self, bot: commands.Bot, services: Services, chat: DiscordChat, conductor: Conductor[DiscordReply]
    ) -> None:
        self.bot = bot
        self.services = services
        self.settings = services.settings
        self.jobs = services.jobs
        self.chat = chat
        self.conductor = conductor
        # A context menu can't be declared in a cog like a slash command: it is added to the tree on load.
        self.menu = app_commands.ContextMenu(name="Download media", callback=self.download_message)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    # -- commands --------------------------------------------------------------------------------------

    @app_commands.command(name="download")
    @app_commands.describe(
        url="A link to a page with a video or a song",
        kind="The video (default) or only its audio",
        quality="The highest video height (default: best available)",
        subtitles="Subtitle languages, comma-separated (e.g. en,de): embedded in the video and attached",
        choose_format="Pick one of the link's formats (with their sizes) from a menu first",
        start="Only a part: where it starts (1:20, or seconds)",
        end="Only a part: where it ends (1:45, or seconds)",
        split_chapters="Each chapter as a file of its own",
        sponsorblock="Sponsor, self-promotion and intro segments: remove them, mark them as chapters, or keep "
        "them (default: your /settings)",
    )
    async def download(
        self,
        interaction: discord.Interaction,
        url: str,
        kind: Literal["video", "audio"] = "video",
        quality: Literal["best", "1080", "720", "480"] = "best",
        subtitles: str | None = None,
        choose_format: bool = False,
        start: str | None = None,
        end: str | None = None,
        split_chapters: bool = False,
        sponsorblock: Literal["remove", "mark", "keep"] | None = None,
    ) -> None:
        """Download a video or its audio from a link."""
        cut = Cut(start, end, split_chapters, sponsorblock)
        await self.start_download(
            interaction, url, kind, quality, subtitles=subtitles, choose_format=choose_format, cut=cut
        )

    async def download_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        text = "\n".join([message.content, *(embed.url for embed in message.embeds if embed.url)])
        urls = extract_urls(text)
        if not urls:
            await interaction.response.send_message(_("That message has no link in it."), ephemeral=True)
            return
        await self.start_download(interaction, urls[0], "video", "best")

    @app_commands.command(name="settings")
    @app_commands.describe(
        sponsors="Sponsor, self-promotion and intro segments of every link you send: keep, remove or mark them",
    )
    async def settings_command(
        self, interaction: discord.Interaction, sponsors: Literal["keep", "remove", "mark"] | None = None
    ) -> None:
        """Your defaults for the links you send."""
        user_id = str(interaction.user.id)
        if sponsors is None:
            prefs = await self.services.prefs.get(SOURCE, user_id)
        else:
            prefs = await self.services.prefs.set(SOURCE, user_id, sponsorblock=sponsors)
        await interaction.response.send_message(texts.settings_text(prefs.sponsorblock), ephemeral=True)

    @app_commands.command(name="cancel")
    async def cancel(self, interaction: discord.Interaction) -> None:
        """Cancel your downloads that are still running."""
        user_id = str(interaction.user.id)
        # A playlist item or a copy being made is cancelled through the request it was made for (whose
        # reply shows it), and cancelling that one cancels all of its items.
        roots: dict[str, None] = {}
        for request, _job in await self.jobs.active_requests(SOURCE, user_id):
            roots.setdefault(await self._root(request))
        cancelled = []
        for root in roots:
            try:
                view = await self.jobs.cancel(root, source=SOURCE, user_id=user_id)
            except NotFound:
                continue
            # Done but not delivered yet (a copy that fits or a playlist's items on their way): stopped too.
            if view.status == "cancelled" or view.delivered_at is None:
                cancelled.append(await self.jobs.get_request(root))
        if not cancelled:
            text = _("You have no downloads running.")
        else:
            text = ngettext("Cancelled {n} download.", "Cancelled {n} downloads.", len(cancelled)).format(
                n=len(cancelled)
            )
        await interaction.response.send_message(text, ephemeral=True)
        for request, job in cancelled:
            await self._show_cancelled(request, job)

    async def _root(self, request: RequestView) -> str:
        """The id of the request a person made that `request` belongs to (itself, a playlist, a file)."""
        for _step in range(3):
            if request.parent_id is None:
                break
            request, _job = await self.jobs.get_request(request.parent_id)
        return request.id

    # -- starting a download ---------------------------------------------------------------------------

    async def start_download(
        self,
        interaction: discord.Interaction,
        text: str,
        kind: str,
        quality: str,
        *,
        subtitles: str | None = None,
        choose_format: bool = False,
        cut: Cut | None = None,
    ) -> None:
        try:
            # Checked before deferring because it needs no I/O, so a mistyped link gets an ephemeral answer.
            url = extract_url(text)
            _kind, langs = check_choices(None, split_languages(subtitles))
            cuts = cut.choices() if cut is not None else {}
            # A part, a split or sponsor removal is of the media as a whole: no format menu for it.
            menu_id = picker.custom_id(langs) if choose_format and not cuts else None
        except MediabotError as exc:
            await interaction.response.send_message(_(exc.message), ephemeral=True)
            return
        callback = await interaction.response.defer(thinking=True)
        if menu_id is not None and await self.offer_formats(interaction, url, langs):
            return
        target = Target.from_interaction(
            interaction,
            ttl_s=self.settings.discord_interaction_ttl_s,
            message_id=callback.message_id if callback else None,
        )
        await self.submit(
            interaction, target, url=url, kind=kind, quality=quality, subtitles=langs, cuts=cuts,
            sponsor_default=cut is None or cut.sponsorblock is None,
        )  # fmt: skip

    async def offer_formats(self, interaction: discord.Interaction, url: str, langs: tuple[str, ...]) -> bool:
        """Answer with the format picker; False when the link offers nothing to choose between (a playlist, whose
        items pick their own; a single format), so it is downloaded as usual."""
        try:
            found = await self.jobs.formats(url)
        except MediabotError as exc:
            await interaction.edit_original_response(content=_(exc.message))
            return True
        choices = picker.options(found)
        if found.playlist is not None or len(choices) < 2:
            return False
        await interaction.edit_original_response(
            content=picker_text(found.title, url, found.duration), view=picker.picker_view(langs, choices)
        )
        return True

    async def format_chosen(
        self,
        interaction: discord.Interaction,
        *,
        url: str,
        kind: str,
        format_id: str,
        subtitles: Sequence[str],
        message_id: int | None,
    ) -> None:
        # This interaction's token edits the picker's message (its `@original`) for 15 minutes, like a command's.
        target = Target.from_interaction(
            interaction,
            ttl_s=self.settings.discord_interaction_ttl_s,
            message_id=message_id,
            edit_original=True,
        )
        await self.submit(
            interaction, target, url=url, kind=kind, format_id=format_id, subtitles=tuple(subtitles)
        )

    async def submit(
        self,
        interaction: discord.Interaction,
        target: Target,
        *,
        url: str,
        kind: str,
        quality: str = "best",
        format_id: str | None = None,
        subtitles: tuple[str, ...] = (),
        cuts: dict[str, Any] | None = None,
        sponsor_default: bool = True,
    ) -> None:
        """Submit the download whose reply `target` names and follow it; a refusal is said in that reply.
        The interaction has been answered (deferred, or its message updated) already. A plain link (no part,
        split or sponsor option) gets the person's sponsor default (/settings) unless `sponsor_default` is
        False."""
        user_id = str(interaction.user.id)
        try:
            await self.check_limits(user_id)
            if sponsor_default and not cuts:
                prefs = await self.services.prefs.get(SOURCE, user_id)
                if prefs.sponsorblock != "keep":
                    cuts = {"sponsorblock": sponsor_choice(prefs.sponsorblock)}
            submission = await self.jobs.submit(
                SubmitRequest(
                    text=url, source=SOURCE, user_id=user_id, kind=kind,  # type: ignore[arg-type]
                    quality=quality, target=target.to_dict(), format_id=format_id, subtitles=subtitles,
                    # Discord's iPhone app, like Telegram's, plays H.264 only.
                    playable=self.settings.chat_playable, **(cuts or {}),
                )
            )  # fmt: skip
        except MediabotError as exc:
            await interaction.edit_original_response(content=_(exc.message), view=None)
            return
        log.info(
            "discord request %s (%s) for job %s", submission.request.id, submission.outcome, submission.job.id
        )
        self.conductor.follow(submission.request, submission.job)

    async def check_limits(self, user_id: str) -> None:
        settings = self.settings
        # Banned (core.admin): its one sentence; else this person's downloads per hour (theirs or the default).
        per_hour = (await self.services.admin.admit(SOURCE, user_id)).requests_per_hour
        running = await self.jobs.count_active(SOURCE, user_id)
        if running >= settings.user_max_concurrent:
            raise LimitReached(
                ngettext(
                    "You already have {n} download running. Wait for it to finish, or use /cancel.",
                    "You already have {n} downloads running. Wait for one to finish, or use /cancel.",
                    running,
                ).format(n=running)
            )
        allowed, retry_after = await self.services.limits.hit(f"{SOURCE}:user:{user_id}", per_hour, HOUR_S)
        if not allowed:
            raise LimitReached(
                ngettext(
                    "You can start {n} download per hour. Try again in {duration}.",
                    "You can start {n} downloads per hour. Try again in {duration}.",
                    per_hour,
                ).format(n=per_hour, duration=human_duration(max(1.0, retry_after)))
            )

    # -- cancelling ------------------------------------------------------------------------------------

    async def cancel_pressed(self, interaction: discord.Interaction, request_id: str) -> None:
        try:
            request = await self.jobs.cancel(request_id, source=SOURCE, user_id=str(interaction.user.id))
        except NotFound:
            await interaction.response.send_message(
                _("Only the person who started this download can cancel it."), ephemeral=True
            )
            return
        except MediabotError as exc:
            await interaction.response.send_message(_(exc.message), ephemeral=True)
            return
        # A finished download may still be on its way: a copy that fits being made, a playlist's items
        # being posted (cancel() stopped the items still downloading). Cancelling stops that too.
        if request.status != "cancelled" and request.delivered_at is not None:
            await interaction.response.send_message(_("This download has already finished."), ephemeral=True)
            return
        # Stop our progress edits first, so none lands after the "Cancelled" below.
        await self.conductor.stop(request_id)
        request, job = await self.jobs.get_request(request_id)
        await interaction.response.edit_message(content=await self.cancelled_content(request, job), view=None)
        await self.jobs.mark_delivered(request_id)

    async def _show_cancelled(self, request: RequestView, job: JobView) -> None:
        """After /cancel: stop following and turn the reply into "Cancelled" (a playlist: its list with what
        was sent) while it can be edited; the request needs no delivery any more."""
        reply = await self.conductor.stop(request.id) or self.chat.reply_for(request)
        if reply is None:
            return
        if reply.out.can_edit():
            with contextlib.suppress(TokenGone, discord.HTTPException, *TRANSIENT):
                await reply.out.edit(content=await self.cancelled_content(request, job), view=None)
        await self.jobs.mark_delivered(request.id)

    async def cancelled_content(self, request: RequestView, job: JobView) -> str:
        """What the reply says once the request was cancelled."""
        if job.playlist is None:
            return cancelled_text(job)
        playlist = Playlist.of(job, await self.jobs.children(request.id))
        playlist.cancelled = True
        return listing_text(playlist)
