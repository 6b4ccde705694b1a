"""Derived jobs (core.jobs.derived): a clip, an animation, a split by chapters or sponsor segments removed,
made from the stored file of the full download they wait on. A split ends as a playlist whose items are its
chapters (worker.playlists): each item is a job of its own that cuts its chapter from the same stored file. Nothing is downloaded here: when the full file
is not stored yet, the job goes back to waiting (queued, attempt not counted) and the full download's end
enqueues it again (worker.finishing)."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.cuts.chapters import Chapter, merge_short, read_chapters, split_by_chapters
from core.cuts.cut import cut_clip, to_animation
from core.cuts.sections import Section
from core.cuts.sponsorblock import (
    SponsorBlockClient,
    SponsorBlockUnavailable,
    SponsorChoice,
    saved_note,
    service_for,
)
from core.db.models import Job, JobStatus, utcnow
from core.errors import Cancelled, DownloadFailed, InvalidRequest, MediabotError
from core.i18n import N_
from core.jobs.derived import Derivation, chapter_name, chapter_title
from core.jobs.deriving import PLAYLIST_REFUSAL
from core.media.results import PlaylistFound
from core.storage.keys import make_key, safe_filename
from worker.held import Held

log = logging.getLogger(__name__)


@dataclass
class Made:
    """What a derivation wrote: one file, or a chapter split's parts (path, filename); the job's new values."""

    files: list[tuple[Path, str]]
    values: dict[str, Any] = field(default_factory=dict)


class RunnerCutting:
    """The runner's derived jobs."""

    sponsorblock: SponsorBlockClient | None

    async def _make_derived(self, held: Held, workdir: Path, derived: Derivation) -> None:
        job = held.job
        async with self.sessions() as session:
            source = await session.get(Job, job.source_job_id) if job.source_job_id else None
        if source is None:
            raise DownloadFailed(
                N_("The full download this was to be made from is gone. Send the link again.")
            )
        if source.status in (JobStatus.QUEUED, JobStatus.RUNNING):
            await self._wait_for_source(held, source.id)
            return
        if (
            source.status == JobStatus.FAILED
            and source.error_code == "too_long"
            and derived.section is not None
        ):
            # The whole media is over the duration limit, so it is never stored: only the clip's part is
            # downloaded, and only the clip's length counts.
            await self._clip_by_range(held, workdir, derived, source)
            return
        if source.status != JobStatus.DONE:
            error = MediabotError.from_dict({"code": source.error_code or "download_failed",
                                             "message": source.error_message})  # fmt: skip
            raise error
        if source.entries is not None:
            raise InvalidRequest(PLAYLIST_REFUSAL)
        if not source.retained or not source.storage_key:
            raise DownloadFailed(N_("The full file has expired. Send the link again."))
        ffmpeg = self.downloader.ffmpeg
        if ffmpeg is None:
            raise DownloadFailed(N_("Clips and chapters can't be made on this server (FFmpeg is missing)."))
        src = await self._source_file(source, workdir / "source")
        cancel = held.control.cancel
        if derived.split_chapters:
            chapters = await asyncio.get_running_loop().run_in_executor(
                self._pool, lambda: merge_short(read_chapters(src, ffmpeg=ffmpeg))
            )
            if not chapters:
                raise InvalidRequest(NO_CHAPTERS)
            await self._expand(held, _chapter_entries(source, chapters), chapters=len(chapters))
            return
        if derived.sponsorblock is not None:
            made = await self._without_sponsors(held, source, src, workdir, ffmpeg, derived.sponsorblock)
        else:
            made = await asyncio.get_running_loop().run_in_executor(
                self._pool, _cut, derived, src, workdir / "out", ffmpeg, cancel,
                float(self.settings.max_duration_s), Path(source.filename or "media").stem, job.title,
            )  # fmt: skip
        if cancel.is_set():
            raise Cancelled()
        await self._store_made(held, source, made)

    async def _clip_by_range(self, held: Held, workdir: Path, derived: Derivation, source: Job) -> None:
        """A clip (or an animation) of media too long to store whole: yt-dlp downloads only its range."""
        assert derived.section is not None
        job, loop = held.job, asyncio.get_running_loop()
        section = derived.section
        got = await loop.run_in_executor(
            self._pool, lambda: self.downloader.run(
                job.id, job.url, job.kind, job.quality, workdir / "range", held.control, lambda _info: True,
                format_id=job.format_id, audio_format=job.audio_format, playable=bool(job.playable),
                section=section,
            ),
        )  # fmt: skip
        if got is None or isinstance(got, PlaylistFound):
            raise InvalidRequest(PLAYLIST_REFUSAL)
        if held.control.cancel.is_set():
            raise Cancelled()
        ffmpeg = self.downloader.ffmpeg
        info, path = got.info, got.path
        length = info.duration or section.length
        end = None if length is None else section.start + length
        label = Section.of(section.start, end).file_label()
        name = f"{Path(got.filename).stem} ({label}){path.suffix}"
        if derived.animation:
            if ffmpeg is None:
                raise DownloadFailed(
                    N_("Clips and chapters can't be made on this server (FFmpeg is missing).")
                )
            clip = await loop.run_in_executor(
                self._pool, lambda: to_animation(path, Section.of(0.0), workdir / "out", ffmpeg=ffmpeg,
                                                 cancel=held.control.cancel),
            )  # fmt: skip
            path, length = clip.path, clip.section.length
        values = {"duration": length, "width": info.width, "height": info.height, "title": info.title or job.title,
                  "extractor": info.extractor, "media_id": info.media_id}  # fmt: skip
        await self._store_made(held, source, Made([(path, name)], values))

    async def _source_file(self, source: Job, directory: Path) -> Path:
        """The full file: in place when storage is local (it is only read), else fetched into `directory`."""
        assert source.storage_key is not None
        local = self.storage.local_path(source.storage_key)
        if local is not None and await asyncio.to_thread(local.exists):
            return local
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        dest = directory / safe_filename(source.filename or "media")
        await self.storage.fetch(source.storage_key, dest)
        return dest

    async def _without_sponsors(
        self, held: Held, source: Job, src: Path, workdir: Path, ffmpeg: str, sb: SponsorChoice
    ) -> Made:
        unavailable = {"note": SponsorBlockUnavailable.default_message, "dedup_key": None}
        if self.sponsorblock is None or not source.media_id:
            return Made([], unavailable)
        try:
            segments = await self.sponsorblock.segments(
                source.media_id, service=service_for(source.extractor or "generic"), categories=sb.categories
            )
        except SponsorBlockUnavailable:
            # Delivered as it is; not kept as the answer for this variant, so the next ask tries again.
            return Made([], unavailable)
        note = saved_note(segments, mode=sb.mode, duration=source.duration)
        if not note.count:
            return Made([], {"note": "No sponsor segments are known for this video."})
        out = workdir / "out"
        await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
        copy = out / safe_filename(source.filename or "media")
        # apply_segments rewrites the file in place: never the stored one. It runs yt-dlp's postprocessor, so
        # it is imported here: a worker loads yt-dlp with its first job, not at start.
        from core.media.sponsor_removal import apply_segments

        await asyncio.to_thread(shutil.copyfile, src, copy)
        applied = await asyncio.get_running_loop().run_in_executor(
            self._pool,
            lambda: apply_segments(
                copy, segments, sb, ffmpeg=ffmpeg, cancel=held.control.cancel, title=source.title or ""
            ),
        )
        values: dict[str, Any] = {"note": note.text, "chapters": len(applied.chapters)}
        if applied.duration_after:
            values["duration"] = applied.duration_after
        return Made([(copy, source.filename or copy.name)], values)

    async def _store_made(self, held: Held, source: Job, made: Made) -> None:
        job = held.job
        if not made.files:
            # Nothing to change (SponsorBlock away, or no segments): the full file as it is, with the note.
            values = _from_source(source)
            values.update(made.values)
            await self._complete(held, JobStatus.DONE, values)
            return
        parts: list[dict[str, Any]] = []
        try:
            for path, name in made.files:
                key = make_key(job.id, name, held.run_id)
                size = await self.storage.save(
                    path, key, filename=name, content_type=mimetypes.guess_type(name)[0]
                )
                parts.append({"key": key, "filename": name, "size": size})
            total = sum(p["size"] for p in parts)
            values = dict(
                storage_key=parts[0]["key"], filename=parts[0]["filename"], filesize=total,
                parts=parts if len(parts) > 1 else None, ext=Path(parts[0]["filename"]).suffix.lstrip(".") or None,
                width=source.width, height=source.height, retained=True, downloaded_bytes=total,
                total_bytes=total, duration=source.duration,
            )  # fmt: skip
            values.update(made.values)
            done = await self._complete(held, JobStatus.DONE, values)
        except BaseException:
            await self._delete_keys([p["key"] for p in parts])
            raise
        if not done:
            await self._delete_keys([p["key"] for p in parts])
        else:
            log.info("job %s: %s made into %d file(s)", job.id, job.variant, len(parts))

    async def _delete_keys(self, keys: list[str]) -> None:
        for key in keys:
            try:
                await self.storage.delete(key)
            except Exception as exc:  # noqa: BLE001 - retention deletes what is left later
                log.warning("could not delete %s: %s", key, type(exc).__name__)

    async def _wait_for_source(self, held: Held, source_id: str) -> None:
        """Back to queued without counting the attempt: the full download's end enqueues this job again."""
        job = held.job
        async with self.sessions() as session, session.begin():
            await session.execute(
                self._owned(job.id).values(
                    status=JobStatus.QUEUED, worker_id=None, lease_until=None, attempts=Job.attempts - 1,
                    enqueued_at=utcnow(), updated_at=utcnow(), seq=job.seq + 1,
                )
            )  # fmt: skip
            # It may have ended between our read and our write: its end then enqueued us while we ran.
            source = await session.get(Job, source_id, populate_existing=True)
        log.info("job %s waits for the download of %s", job.id, source_id)
        if source is not None and source.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            await self._safe_enqueue(job.id)


def _from_source(source: Job) -> dict[str, Any]:
    """A derived job that is the source's file as it is (shared, like a cache hit: it expires with it)."""
    return dict(
        storage_key=source.storage_key, filename=source.filename, filesize=source.filesize, ext=source.ext,
        duration=source.duration, width=source.width, height=source.height, retained=True,
        downloaded_bytes=source.filesize, total_bytes=source.filesize, cached_from=source.id,
        assets=source.assets, chapters=source.chapters,
    )  # fmt: skip


NO_CHAPTERS = N_("This media has no chapters to split it by.")


def _chapter_entries(source: Job, chapters: list[Chapter]) -> PlaylistFound:
    """A split's chapters as a playlist's entries: numbered and titled ("3/7 · Chapter name")."""
    count = len(chapters)
    entries = [
        {
            "url": source.url,
            "title": chapter_title(n, count, c.title),
            "index": n,
            "start": c.start,
            "end": c.end,
        }
        for n, c in enumerate(chapters, start=1)
    ]
    return PlaylistFound(title=source.title, entries=entries, total=count)


def _cut(
    derived: Derivation,
    src: Path,
    out: Path,
    ffmpeg: str,
    cancel: threading.Event,
    limit_s: float,
    stem: str,
    title: str | None = None,
) -> Made:
    """A clip, an animation or one chapter of `src` (blocking: on a download thread); `stem` names the
    clip's file after the full one's, `title` is a chapter item's ("3/7 · Chapter name")."""
    if derived.chapter is not None:
        assert derived.section is not None and derived.section.end is not None
        name = chapter_name(title) or f"Chapter {derived.chapter}"
        chapter = Chapter(title=name, start=derived.section.start, end=derived.section.end)
        parts = split_by_chapters(src, [chapter], out, ffmpeg=ffmpeg, cancel=cancel, merge=False)
        if not parts:
            raise InvalidRequest(N_("This chapter is past the end of the file."))
        part = parts[0]
        return Made([(part.path, f"{derived.chapter:02d} {part.path.name[3:]}")], {"duration": part.duration})
    if derived.section is not None:
        if derived.animation:
            clip = to_animation(src, derived.section, out, ffmpeg=ffmpeg, cancel=cancel)
        else:
            clip = cut_clip(src, derived.section, out, ffmpeg=ffmpeg, cancel=cancel, limit_s=limit_s)
        label = clip.section.file_label()
        name = f"{stem} ({label}){clip.path.suffix}"
        chapters = len(read_chapters(clip.path, ffmpeg=ffmpeg)) if not derived.animation else 0
        values: dict[str, Any] = {"duration": clip.section.length, "chapters": chapters or None}
        return Made([(clip.path, name)], values)
    raise InvalidRequest(NO_CHAPTERS)  # a split is made into chapter items, never cut here
