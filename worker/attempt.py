"""One request of a site as one identity, shared by everything a worker asks of a site (issue 23): a job's
download (worker.runner without pacing, worker.pacing with it), a subscription's listing and a format probe.

`as_identity` runs on a download or probe thread: a private copy of the identity's cookies file (what the site
refreshed is written back after a success), its proxy. `paced_call` is the async side for requests that are
not jobs (listings, probes): it waits for a slot of the site, turns through the site's identities, rests the
one a site refuses (back-off, not a failure), and gives up with `Deferred` when the site keeps us waiting.
Neither imports yt-dlp: the downloader does, on its first call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from core.errors import LoginRequired, MediabotError
from core.pacing import Granted, Identity, Pacing, Resting, checkout, write_back
from worker.memory import trim_memory

if TYPE_CHECKING:
    from core.db.models import Job
    from core.media.control import Control
    from core.media.downloader import Access
    from core.media.lazy_downloader import LazyDownloader as Downloader
    from core.media.results import Downloaded, PlaylistFound

log = logging.getLogger(__name__)

T = TypeVar("T")

# Identities tried for one request (a job within one claim) before it waits for the first to be back: each
# refusal rests the one used, so this only bounds a pool of many identities that all refuse in turn.
MAX_IDENTITIES = 6
# When the pacing store (Redis) does not answer: ask again this much later.
UNAVAILABLE_RETRY_S = 5.0


class Deferred(Exception):
    """A request that is not a job could not be made now: its site has no slot for it in time, or every
    identity rests. Not a failure of what asked: ask again after `retry_after` seconds."""

    def __init__(self, site: str, retry_after: float) -> None:
        super().__init__(f"{site}: not now, again in {retry_after:.0f}s")
        self.site = site
        self.retry_after = retry_after


def as_identity(identity: Identity | None, workdir: Path, call: Callable[[Access | None], T]) -> T:
    """`call(access)` as `identity` (None: as the legacy path does, the link's domain cookies file), on a
    thread. A failure that could not reach the site through an unreachable proxy is the proxy's."""
    if identity is None:
        return call(None)
    from core.media.downloader import Access

    workdir.mkdir(parents=True, exist_ok=True)
    copy = checkout(identity.cookies.path, workdir) if identity.cookies is not None else None
    access = Access(copy.copy if copy else None, identity.proxy.url if identity.proxy else None)
    try:
        result = call(access)
    except MediabotError as exc:
        if exc.outcome is None and access.proxy and not _reachable(access.proxy):
            exc.outcome = "proxy_failed"
        raise
    if copy is not None:
        write_back(copy)
    return result


def download_as(
    downloader: Downloader,
    job: Job,
    workdir: Path,
    control: Control,
    on_info: Any,
    identity: Identity | None = None,
) -> Downloaded | PlaylistFound | None:
    """The blocking part of a job, on a download thread. Only a link someone sent expands as a playlist;
    a playlist's own items never do."""

    def download(access: Access | None) -> Downloaded | PlaylistFound | None:
        return downloader.run(  # type: ignore[no-any-return]
            job.id,
            job.url,
            job.kind,
            job.quality,
            workdir,
            control,
            on_info,
            expand_playlist=job.parent_id is None,
            format_id=job.format_id,
            subtitles=tuple(job.subtitle_langs or ()),
            audio_format=job.audio_format,
            playable=bool(job.playable),
            access=access,
        )

    try:
        return as_identity(identity, workdir, download)
    finally:
        trim_memory()


async def refused(pacing: Pacing, identity: Identity, outcome: str) -> None:
    """What a site's refusal does to the identity used: a rest (rate limit, bot check, dead proxy) or its
    cookies file set aside. A login the site wants and we have no account for is the person's answer."""
    if outcome == "login_required" and identity.cookies is None:
        raise LoginRequired()
    await pacing.identities.report(identity, outcome)


async def paced_call(
    pacing: Pacing,
    site: str,
    holder: str,
    url: str,
    call: Callable[[Access | None], T],
    *,
    wait_s: float,
    tmp_dir: Path,
    run: Callable[[Callable[[], T]], Any] | None = None,
    slot: bool = True,
    keep_place: bool = False,
) -> T:
    """`call(access)` (blocking) once the site has a slot for `holder`, as the site's next identity; the slot
    is held (and renewed) only while the call runs. Waits for the slot up to `wait_s` seconds, then raises
    Deferred; a refusal rests the identity and the next one is tried; when all rest, Deferred.
    `slot=False`: identities only (a probe a person waits for does not queue behind long downloads).
    `keep_place`: a `holder` that asks again soon under the same name (a subscription's next check) keeps its
    place in the site's line when the wait runs out, so a long line cannot put it off for ever."""
    deadline = time.monotonic() + wait_s
    slot = slot and pacing.limits.for_site(site) is not None  # a site without a limit has no line to wait in
    if slot:
        try:
            await _acquire(pacing, site, holder, deadline, keep_place)
        except Deferred:
            raise
        except Exception as exc:  # noqa: BLE001 - the pacing store (Redis) away: later, not unpaced
            log.warning("%s: pacing unavailable (%s); not now", holder, type(exc).__name__)
            raise Deferred(site, UNAVAILABLE_RETRY_S) from exc
    renewer = asyncio.ensure_future(_renew(pacing, site, holder)) if slot else None
    try:
        for _ in range(MAX_IDENTITIES):
            try:
                identity = await pacing.identities.choose(site, url)
            except Exception as exc:  # noqa: BLE001 - as above
                log.warning("%s: identities unavailable (%s); not now", holder, type(exc).__name__)
                raise Deferred(site, UNAVAILABLE_RETRY_S) from exc
            if isinstance(identity, Resting):
                raise Deferred(site, max(identity.retry_after, 1.0))
            workdir = await asyncio.to_thread(_workdir, tmp_dir)
            try:
                attempt = functools.partial(as_identity, identity, workdir, call)
                result = await (run(attempt) if run is not None else asyncio.to_thread(attempt))
            except MediabotError as exc:
                if exc.outcome is None:
                    raise
                await refused(pacing, identity, exc.outcome)
                continue
            finally:
                await asyncio.to_thread(_remove, workdir)
            await pacing.identities.succeeded(identity)
            return result  # type: ignore[no-any-return]
        raise Deferred(site, pacing.identities.backoff.base_s)
    finally:
        if renewer is not None:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            with contextlib.suppress(Exception):
                await pacing.pacer.release(site, holder)


async def _acquire(pacing: Pacing, site: str, holder: str, deadline: float, keep_place: bool) -> None:
    """Wait in the site's line like a job does (first come, first served, the same budget), but in place:
    a listing or a probe holds no download slot of the worker while it waits."""
    while True:
        answer = await pacing.pacer.try_acquire(site, holder)
        if isinstance(answer, Granted):
            return
        left = deadline - time.monotonic()
        if left <= 0:
            if not keep_place:
                with contextlib.suppress(Exception):
                    await pacing.pacer.forget(site, holder)
            raise Deferred(site, max(answer.retry_after, 1.0))
        log.debug("%s waits for %s (%d ahead)", holder, site, answer.ahead)
        await asyncio.sleep(min(max(answer.retry_after, 0.02), left))


async def _renew(pacing: Pacing, site: str, holder: str) -> None:
    """Keep the slot while the call runs (a slow listing outlives a slot's lease), as jobs do with theirs."""
    timings = getattr(pacing.pacer, "timings", None)
    every = max(timings.lease_s / 3, 0.05) if timings is not None else 10.0
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await pacing.pacer.renew(site, holder)


def _workdir(tmp_dir: Path) -> Path:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="paced-", dir=tmp_dir))


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _reachable(proxy: str) -> bool:
    """Whether the proxy takes a connection: a download that could not reach its site through a proxy that
    does not is the proxy's failure, not the site's."""
    parts = urlsplit(proxy)
    port = parts.port or (1080 if parts.scheme.startswith("socks") else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=3):
            return True
    except OSError:
        return False


def refusing_sentence(name: str, wait_s: float) -> str:
    minutes = max(1, math.ceil(wait_s / 60))
    when = f"in about {minutes} minute{'s' if minutes != 1 else ''}"
    if minutes >= 90:
        hours = round(minutes / 60)
        when = f"in about {hours} hour{'s' if hours != 1 else ''}"
    return f"{name} is refusing our downloads for now; try again {when}."
