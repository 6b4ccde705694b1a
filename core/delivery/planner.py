"""The delivery planner: one place decides how a finished file reaches a destination with a size limit.

In order: the file as it is; a copy that fits (made by a worker: a smaller format the site offers, an FFmpeg
re-encode when the operator turned it on, parts when the destination takes parts); otherwise a link. A
platform that refuses an upload as too large (Discord's 40005, an HTTP 413) moves the plan on to a copy
that fits a lower limit instead of failing. Front ends supply the three actions; the order lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

from core.errors import MediabotError, NotFound
from core.i18n import N_, _, ngettext
from core.jobs.service import JobService
from core.jobs.views import JobView, RequestView
from core.words import human_limit, human_size

log = logging.getLogger(__name__)

MAX_REFUSALS = 3
FOLLOW_RETRIES = 30


@dataclass(frozen=True)
class Destination:
    """Where files go and how big they may be. `tiers`: the limits the platform is known to use, so a
    refusal below the stated limit steps down to the next one (Discord: 10, 50, 100, 500 MiB)."""

    name: str
    limit: int | None
    split: bool = False
    tiers: tuple[int, ...] = ()
    # Set when the platform refused a file under its stated limit and no known tier lies below it: the
    # limit aimed for is then a guess, and the person is told what was refused instead.
    refused: int | None = None

    def fits(self, view: JobView) -> bool:
        if self.limit is None:
            return True
        if view.parts:
            return all(part.size <= self.limit for part in view.parts)
        return view.filesize is not None and view.filesize <= self.limit

    def lowered(self, refused: int) -> Destination:
        """The destination after it refused `refused` bytes: a lower limit to aim for."""
        below = [tier for tier in self.tiers if tier < refused]
        limit = max(below) if below else int(refused * 0.75)
        if self.limit is not None:
            limit = min(limit, self.limit)
        return replace(self, limit=limit, refused=None if below else refused)


class Refused(Exception):
    """Raised by an upload action when the platform refused the file as too large."""

    def __init__(self, size: int) -> None:
        super().__init__(f"refused {size} bytes")
        self.size = size


Outcome = Literal["as_is", "fitted", "link", "cancelled"]


@dataclass(frozen=True)
class Planned:
    outcome: Outcome
    sent: JobView | None  # the job whose file went out (the original, or a fitted copy)
    note: str | None  # what the person is told about the choice


def fit_note(copy: JobView, dest: Destination) -> str:
    """ "Sent at 480p to fit Discord's 10 MB limit." and the like."""
    n, height = len(copy.parts or ()), copy.height
    if dest.refused is not None:
        where = _("{platform} refused the {size} file").format(
            platform=dest.name, size=human_size(dest.refused)
        )
        if copy.fit_method == "split" and copy.parts:
            return ngettext("Sent in {n} part: {where}.", "Sent in {n} parts: {where}.", n).format(
                n=n, where=where
            )
        if copy.fit_method == "reencode":
            said = _("Re-encoded at {height}p: {where}.") if height else _("Re-encoded: {where}.")
        else:
            said = _("Sent at {height}p: {where}.") if height else _("Sent: {where}.")
        return said.format(height=height, where=where)
    where = _("{platform}'s {limit} limit").format(platform=dest.name, limit=human_limit(dest.limit or 0))
    if copy.fit_method == "split" and copy.parts:
        return ngettext("Sent in {n} part to fit {where}.", "Sent in {n} parts to fit {where}.", n).format(
            n=n, where=where
        )
    if copy.fit_method == "reencode":
        said = _("Re-encoded at {height}p to fit {where}.") if height else _("Re-encoded to fit {where}.")
    else:
        said = _("Sent at {height}p to fit {where}.") if height else _("Sent to fit {where}.")
    return said.format(height=height, where=where)


def link_note(view: JobView, dest: Destination) -> str:
    size = f" ({human_size(view.filesize)})" if view.filesize else ""
    if dest.limit is None:
        return _("Download it{size}:").format(size=size)
    return _("Too large for {platform}{size}, and no smaller copy fits its {limit} limit.").format(
        platform=dest.name, size=size, limit=human_limit(dest.limit)
    )


class DeliveryPlanner:
    """Walks the plan for one request. The front end passes:
    - `upload(view, note)`: send the file(s) of `view`; raise Refused when the platform says too large;
    - `show(view)`: show the progress of a copy being made (a job state);
    - `link(view, note)`: send a download link to `view`'s file with the sentence `note`.
    """

    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    async def deliver(
        self,
        request: RequestView,
        view: JobView,
        dest: Destination,
        *,
        upload: Callable[[JobView, str | None], Awaitable[None]],
        show: Callable[[JobView], Awaitable[None]],
        link: Callable[[JobView, str], Awaitable[None]],
    ) -> Planned:
        current = view
        tried: set[int] = set()
        for _attempt in range(MAX_REFUSALS + 1):
            if dest.fits(current):
                note = fit_note(current, dest) if current.id != view.id else None
                try:
                    await upload(current, note)
                    return Planned("as_is" if current.id == view.id else "fitted", current, note)
                except Refused as exc:
                    log.info("%s refused %d bytes; aiming lower", dest.name, exc.size)
                    dest = dest.lowered(exc.size)
            if dest.limit is None or dest.limit in tried:
                break
            tried.add(dest.limit)
            copy = await self._fit(request, dest, show)
            if copy is None:
                return Planned("cancelled", None, None)
            if copy.status != "done":
                log.info("no copy fits %s (%s)", dest.name, copy.error.code if copy.error else copy.status)
                break
            current = copy
        note = link_note(view, dest)
        await link(view, note)
        return Planned("link", view, note)

    async def _fit(
        self, request: RequestView, dest: Destination, show: Callable[[JobView], Awaitable[None]]
    ) -> JobView | None:
        """The final state of a copy that fits `dest`; None when the person cancelled it."""
        assert dest.limit is not None
        submission = await self.jobs.fit(request.id, dest.limit, split=dest.split)
        final = await follow(self.jobs, submission.job, show)
        # The copy may be shared with someone else and end done although this person cancelled theirs.
        child, _job = await self.jobs.get_request(submission.request.id)
        if child.status == "cancelled":
            return None
        return final


async def follow(
    jobs: JobService, view: JobView, show: Callable[[JobView], Awaitable[None]] | None = None
) -> JobView:
    """Follow a job to its end, showing each state; an outage of the database or bus only pauses."""
    final = view
    delay = 1.0
    for _attempt in range(FOLLOW_RETRIES):
        try:
            async for state in jobs.watch(view.id, after_seq=final.seq):
                final = state
                if state.terminal:
                    return state
                if show is not None:
                    await show(state)
                delay = 1.0
            if final.terminal:
                return final
        except (asyncio.CancelledError, NotFound):
            raise
        except Exception as exc:  # noqa: BLE001 - database or Redis away: look again shortly
            log.warning("lost track of job %s (%s); retrying in %.0f s", view.id, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
    raise MediabotError(N_("Lost track of the download."))


async def finished_items(jobs: JobService, request_id: str) -> AsyncIterator[tuple[RequestView, JobView]]:
    """A playlist request's items not delivered yet, each as soon as its job ends (finishing order)."""
    items = [(r, j) for r, j in await jobs.children(request_id) if r.delivered_at is None]
    done: asyncio.Queue[tuple[RequestView, JobView] | BaseException] = asyncio.Queue()

    async def one(request: RequestView, job: JobView) -> None:
        try:
            await done.put((request, await follow(jobs, job)))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            await done.put(exc)

    tasks = [asyncio.create_task(one(r, j), name=f"item-{r.id[:8]}") for r, j in items]
    try:
        for _ in tasks:
            got = await done.get()
            if isinstance(got, BaseException):
                raise got
            yield got
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def playlist_line(view: JobView) -> str:
    """ "Playlist: 10 of 143 items" (or "Playlist: 3 items" when that is all of it, or the size is unknown)."""
    assert view.playlist is not None
    count, total = view.playlist.count, view.playlist.total
    if view.variant == "chapters":  # a split by chapters: its items are the chapters
        return f"Split by chapters: {count} chapter{'s' if count != 1 else ''}"
    if total and total > count:
        return ngettext("Playlist: {n} of {total} item", "Playlist: {n} of {total} items", total).format(
            n=count, total=total
        )
    return ngettext("Playlist: {n} item", "Playlist: {n} items", count).format(n=count)
