"""`mediabot download`: one link (or a playlist) through the job service, as a downloader behaves: a
progress bar and no log lines unless `-v`, a copy where `-o` says, and a cancelled job on Ctrl-C, SIGTERM
or SIGHUP."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import re
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.apikeys import ApiKeyService
from core.bootstrap import Services
from core.config import Settings
from core.cuts.sections import parse_section
from core.delivery.planner import finished_items, playlist_line
from core.errors import MediabotError
from core.i18n import _
from core.jobs.choices import AUDIO_FORMATS, Source, SubmitRequest
from core.jobs.derived import sponsor_choice
from core.jobs.views import JobView, Submission, subtitle_asset
from core.words import progress_line
from mediabot.hosting import prepare_database, services_for

# The key `mediabot run` creates first: the CLI's downloads are listed in the web page under it.
DEFAULT_KEY = "default"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


def add_download_parser(sub: Any) -> None:
    p = sub.add_parser("download", help="download one link (or a playlist) and print where the file is")
    p.add_argument("url")
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="keep a copy here, yours beyond MEDIABOT_RETENTION_HOURS: a file name, or a folder (one that "
        "exists, or a name ending in /); a playlist's files go into a folder",
    )
    p.add_argument("--audio", action="store_true", help="audio only")
    p.add_argument(
        "--audio-format",
        choices=AUDIO_FORMATS,
        help="the audio file type (implies --audio; default MEDIABOT_AUDIO_FORMAT)",
    )
    p.add_argument("--quality", default="best", help="best, or a height cap such as 1080, 720, 480")
    p.add_argument("--format", help="a format id from `mediabot formats URL`")
    p.add_argument("--subs", help="subtitle languages, comma-separated (en,de)")
    p.add_argument(
        "--section", metavar="START-END", help="only this part, as 1:20-1:45, 80-105 or 1:20- (to the end)"
    )
    p.add_argument(
        "--sponsorblock", choices=("remove", "mark"),
        help="remove sponsor, self-promotion and intro segments, or mark them as chapters",
    )  # fmt: skip
    p.add_argument(
        "-v", "--verbose", action="store_true", help="print log lines too, not only warnings and errors"
    )


def error_lines(exc: MediabotError) -> str:
    """The error's sentence, and on a second line the operator's advice when it has some."""
    hint = getattr(exc, "hint", None)
    return f"mediabot: {_(exc.message)}" + (f"\n{hint}" if hint else "")


@dataclass(frozen=True)
class Owner:
    """Whose download it is, and so where it is listed."""

    source: Source
    user_id: str
    # One line for the person when the download is listed nowhere they would look.
    note: str | None = None


async def owner(keys: ApiKeyService) -> Owner:
    """The API key named `default` when there is an active one, so the download shows in the web page's
    history of that key (the page lists a key's `api` requests)."""
    for info in await keys.list():
        if info.name == DEFAULT_KEY and info.active:
            return Owner("api", info.id)
    return Owner(
        "cli",
        getpass.getuser(),
        f"(not in the web page's history: no active API key is named {DEFAULT_KEY!r})",
    )


class Output:
    """Where `-o` asked for a copy: a file, or a folder (one that exists, or a path ending in a slash)."""

    def __init__(self, text: str) -> None:
        self.path = Path(text).expanduser()
        self.folder = text.endswith(("/", os.sep)) or self.path.is_dir()

    def problem(self) -> str | None:
        """Why a copy could not be written there, checked before anything is downloaded."""
        if self.folder:
            if self.path.exists() and not self.path.is_dir():
                return _("{path} is a file, not a folder.").format(path=self.path)
            return None
        parent = self.path.parent
        if not parent.is_dir():
            return _("There is no folder {folder} to put {name} in.").format(
                folder=parent, name=self.path.name
            )
        return None

    def target(self, view: JobView, *, playlist: bool) -> Path:
        """The copy's path for a finished job; a playlist's items always go into the folder."""
        name = Path(view.filename or "media").name
        if self.folder or playlist:
            if self.path.exists() and not self.path.is_dir():
                raise NotAFolder(
                    _("{path} is a file; a playlist's files need a folder.").format(path=self.path)
                )
            self.path.mkdir(parents=True, exist_ok=True)
            return self.path / name
        return self.path


class NotAFolder(MediabotError):
    code = "invalid_output"


def link_problem(text: str) -> str | None:
    """The CLI's own words for a link that is not an address (the core's are meant for chats)."""
    text = text.strip()
    if not text:
        return _("Give the link to download, such as https://example.com/video.")
    if not _SCHEME.match(text):
        return _("{text} is not a full address: start it with https:// (or http://).").format(text=text)
    return None


class Interrupted:
    """SIGINT, SIGTERM and SIGHUP (the terminal closed) all stop the command and cancel its download."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal: signal.Signals | None = None

    def install(self) -> Interrupted:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            with contextlib.suppress(NotImplementedError, ValueError):
                loop.add_signal_handler(sig, self._received, sig)
        return self

    def _received(self, sig: signal.Signals) -> None:
        if self.signal is None:
            self.signal = sig
        self.event.set()

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signal or signal.SIGINT)

    def sentence(self, *, submitted: bool = True) -> str:
        what = "the download was cancelled" if submitted else "nothing was downloaded"
        return f"mediabot: stopped by {_SIGNALS.get(self.signal or signal.SIGINT)}; {what}."


async def cmd_download(settings: Settings, args: argparse.Namespace) -> int:
    problem = link_problem(args.url)
    output = Output(args.output) if args.output is not None else None
    problem = problem or (output.problem() if output else None)
    if problem:
        print(f"mediabot: {problem}", file=sys.stderr)
        return 2
    interrupted = Interrupted().install()
    await prepare_database(settings)
    async with services_for(settings, worker=not settings.redis_url) as services:
        if interrupted.event.is_set():  # while starting: nothing was asked for yet
            print(interrupted.sentence(submitted=False), file=sys.stderr)
            return interrupted.exit_code
        who = await owner(services.keys)
        try:
            section = parse_section(args.section) if args.section else None
        except MediabotError as exc:
            print(error_lines(exc), file=sys.stderr)
            return 2
        request = SubmitRequest(
            text=args.url,
            source=who.source,
            user_id=who.user_id,
            kind="audio" if args.audio or args.audio_format else "video",
            quality=args.quality,
            format_id=args.format,
            subtitles=tuple(lang for lang in (args.subs or "").split(",") if lang),
            audio_format=args.audio_format,
            section=section,
            sponsorblock=sponsor_choice(args.sponsorblock),
        )
        try:
            submission = await services.jobs.submit(request)
        except MediabotError as exc:
            print(error_lines(exc), file=sys.stderr)
            return 1
        if who.note:
            print(who.note, file=sys.stderr)
        follow = asyncio.create_task(_follow(services, submission, output))
        stop = asyncio.create_task(interrupted.event.wait())
        try:
            await asyncio.wait({follow, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if follow.done():
            return follow.result()
        follow.cancel()
        await asyncio.gather(follow, return_exceptions=True)
        await services.jobs.cancel(submission.request.id)
        if sys.stderr.isatty():
            print(file=sys.stderr)
        print(interrupted.sentence(), file=sys.stderr)
        return interrupted.exit_code


async def _follow(services: Services, submission: Submission, output: Output | None) -> int:
    """The progress bar until the job ends, then where the file is (and its copy)."""
    tty = sys.stderr.isatty()
    final: JobView = submission.job
    async for view in services.jobs.watch(submission.job.id):
        final = view
        line = f"{view.status:<9} {progress_line(view, 24)}" if view.status == "running" else view.status
        if tty:
            print(f"\r\x1b[2K{line}", end="", file=sys.stderr, flush=True)
        elif view.status != "running":
            print(line, file=sys.stderr)
    if tty:
        print(file=sys.stderr)
    if final.status != "done":
        message = (
            _(final.error.message)
            if final.error
            else _("The download ended as {status}.").format(status=final.status)
        )
        print(f"mediabot: {message}", file=sys.stderr)
        return 1
    if final.playlist is not None:
        return await _print_items(services, submission.request.id, final, output)
    if submission.outcome == "cached" or final.cached_from:
        print(_("(from cache)"), file=sys.stderr)
    if final.subtitles_missing:
        print(
            _("(no subtitles in {languages})").format(languages=", ".join(final.subtitles_missing)),
            file=sys.stderr,
        )
    print(await _deliver(services, final, output, playlist=False))
    return 0


async def _print_items(services: Services, request_id: str, playlist: JobView, output: Output | None) -> int:
    """A playlist: each item's file as it finishes, one per line; 1 when any item failed."""
    print(playlist_line(playlist), file=sys.stderr)
    failed = 0
    async for request, view in finished_items(services.jobs, request_id):
        if view.status == "done":
            print(await _deliver(services, view, output, playlist=True))
        else:
            failed += 1
            reason = _(view.error.message) if view.error else view.status
            print(f"mediabot: {view.title or request.url}: {reason}", file=sys.stderr)
        await services.jobs.mark_delivered(request.id)
    await services.jobs.mark_delivered(request_id)
    return 1 if failed else 0


async def _deliver(services: Services, view: JobView, output: Output | None, *, playlist: bool) -> str:
    """What to print for a finished job: its copy under `-o`, else the stored file's path (or its link
    when the files live in S3)."""
    if output is None:
        path = await services.jobs.local_path(view.id)
        return str(path) if path is not None and path.exists() else await services.jobs.link(view.id)
    dest = output.target(view, playlist=playlist)
    await _copy(services, view.id, dest)
    for sub in view.subtitles:
        # Beside the file under the name players look for: clip.mp4 -> clip.en.srt.
        await _copy(
            services, view.id, dest.with_name(f"{dest.stem}.{sub.lang}.srt"), subtitle_asset(sub.lang)
        )
    return str(dest)


async def _copy(services: Services, job_id: str, dest: Path, asset: str | None = None) -> None:
    """Copy a stored file to `dest` under a temporary name first, so an interrupted copy leaves nothing
    that looks finished. A local file is copied directly, so an error names the person's own path."""
    part = dest.with_name(f".{dest.name}.part")
    try:
        source = await services.jobs.local_path(job_id, asset=asset)
        if source is not None and source.exists():
            await asyncio.to_thread(shutil.copyfile, source, part)
        else:
            await services.jobs.fetch_file(job_id, part, asset=asset)
        await asyncio.to_thread(os.replace, part, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
