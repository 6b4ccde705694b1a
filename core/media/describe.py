"""Sizes, heights and codecs a page does not state, read from the first bytes of its files (core.media.headers)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yt_dlp
from yt_dlp.networking import Request

from core.media.control import Control
from core.media.formats import SKIP_EXTS
from core.media.headers import Facts, file_facts, stream_facts

log = logging.getLogger(__name__)

# Describing files a page doesn't describe: how many, how many at once, and how long it may take in all.
MAX_DESCRIBED = 6
FACTS_THREADS = 4
FACTS_TIMEOUT_S = 5.0
FACTS_DEADLINE_S = 8.0
_DESCRIBABLE = ("http", "https", "m3u8", "m3u8_native")


def needs_facts(fmt: dict[str, Any], duration: float | None) -> bool:
    """Whether a format lacks a size, a height (video) or its codecs, and is a file or stream we can read."""
    if not fmt.get("url") or fmt.get("ext") in SKIP_EXTS or fmt.get("protocol") not in _DESCRIBABLE:
        return False
    sized = fmt.get("filesize") or fmt.get("filesize_approx") or (fmt.get("tbr") and duration)
    pictured = fmt.get("vcodec") == "none" or fmt.get("height")
    named = fmt.get("vcodec") is not None and fmt.get("acodec") is not None
    return not (sized and pictured and named)


def apply_facts(fmt: dict[str, Any], facts: Facts, raw: dict[str, Any]) -> None:
    """What a file turned out to be, where the site said nothing (its own words are kept)."""
    if facts.size and not (fmt.get("filesize") or fmt.get("filesize_approx")):
        fmt["filesize_approx" if facts.size_estimated else "filesize"] = facts.size
    probe = facts.probe
    if probe is None:
        return
    if fmt.get("vcodec") is None:
        fmt["vcodec"] = probe.vcodec if probe.has_video else "none"
    if fmt.get("acodec") is None:
        fmt["acodec"] = probe.acodec if probe.has_audio else "none"
    if probe.has_video and not fmt.get("height"):
        fmt["height"], fmt["width"] = probe.height, fmt.get("width") or probe.width
    elif probe.has_video and not fmt.get("width") and fmt.get("height") == probe.height:
        fmt["width"] = probe.width
    if probe.duration and not raw.get("duration"):
        raw["duration"] = probe.duration


def describe_files(
    ydl: yt_dlp.YoutubeDL,
    raw: dict[str, Any],
    work: Path,
    ffmpeg: str | None,
    guarded: Callable[[], contextlib.AbstractContextManager[None]],
    control: Control,
) -> None:
    """Fill in the sizes, heights and codecs the site doesn't state (direct links, og:video and <video>
    pages state none), from a few bytes of each file (core.media.headers): through yt-dlp, so with the address
    guard and the site's cookies; a few files at once; all within FACTS_DEADLINE_S."""
    formats = raw.get("formats") or [raw]
    wanted = [f for f in formats if needs_facts(f, raw.get("duration"))][:MAX_DESCRIBED]
    if not wanted:
        return

    def open_url(url: str, headers: dict[str, str]) -> Any:
        return ydl.urlopen(Request(url, headers=headers, extensions={"timeout": FACTS_TIMEOUT_S}))

    def describe(index: int, fmt: dict[str, Any]) -> Facts:
        folder = work / f"facts-{index}"
        folder.mkdir()
        read = stream_facts if str(fmt.get("protocol")).startswith("m3u8") else file_facts
        with guarded():
            return read(open_url, fmt["url"], dict(fmt.get("http_headers") or {}), folder, ffmpeg)

    pool = ThreadPoolExecutor(max_workers=FACTS_THREADS, thread_name_prefix="facts")
    try:
        futures = {pool.submit(describe, i, fmt): fmt for i, fmt in enumerate(wanted)}
        done, pending = concurrent.futures.wait(futures, timeout=FACTS_DEADLINE_S)
        if pending:
            control.stop()  # shuts the late ones' connections: they end at once
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for future in done:
        try:
            facts = future.result()
        except Exception as exc:  # noqa: BLE001 - a file we can't read is listed with what the site said
            log.debug("format %s not described: %s", futures[future].get("format_id"), exc)
            continue
        apply_facts(futures[future], facts, raw)
