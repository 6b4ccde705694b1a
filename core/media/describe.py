"""Sizes, heights and codecs a page does not state, read from the first bytes of its files (core.media.headers)."""

from __future__ import annotations

import logging
from typing import Any

from core.media.formats import SKIP_EXTS
from core.media.headers import Facts

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
