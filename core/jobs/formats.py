"""What a link offers (formats, subtitles, a playlist's size), as the front ends show it, and a short cache of
those answers (a worker reads them: core.media.formats)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel, Field


class Playlist(BaseModel):
    count: int  # items taken (at most MEDIABOT_MAX_PLAYLIST_ITEMS)
    total: int | None = None  # items in the whole list, when the site says


class Subtitle(BaseModel):
    """One .srt file made for a finished job (the same text is embedded in an mp4 video)."""

    lang: str
    filename: str
    size: int


class FormatChoice(BaseModel):
    """One real format a link offers, as a person picks it."""

    format_id: str
    ext: str | None = None
    kind: Literal["video", "audio"]  # video: has a picture (sound in it or merged in); audio: sound only
    has_audio: bool
    height: int | None = None
    width: int | None = None
    fps: float | None = None
    vcodec: str | None = None
    acodec: str | None = None
    codecs: str | None = None  # the codec families as people know them: "H.264 + AAC", "Opus 128k"
    tbr: float | None = None  # kbit/s
    # bytes: stated by the site, else the file's own (read from its server), else estimated from bitrate x
    # duration or, for a stream, from its first segment
    filesize: int | None = None
    filesize_estimated: bool = False
    label: str  # what a person picks by: "360p · H.264 + AAC · 30.7 MB", "audio only · Opus 128k · 3.1 MB"


class MediaFormats(BaseModel):
    """What a link offers before anything is downloaded."""

    url: str
    title: str | None = None
    duration: float | None = None
    uploader: str | None = None
    thumbnail: str | None = None  # the site's own thumbnail URL
    formats: list[FormatChoice] = Field(default_factory=list)  # video by height (best first), then audio
    subtitles: list[str] = Field(default_factory=list)  # languages that have subtitles
    playlist: Playlist | None = None  # a playlist link: items choose their own formats, `formats` is empty
    cached: bool = False


CACHE_TTL_S = 300.0
CACHE_SIZE = 512


class FormatCache:
    """Probe results for a few minutes, per process, so a picker that asks again (a button pressed, a page
    reloaded) costs nothing and one link pasted by many people is probed once. Failures are not kept."""

    def __init__(self, ttl_s: float = CACHE_TTL_S, size: int = CACHE_SIZE) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._entries: OrderedDict[str, tuple[float, MediaFormats]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[MediaFormats]] = {}

    async def get(self, key: str, probe: Callable[[], Awaitable[MediaFormats]]) -> MediaFormats:
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            self._entries.move_to_end(key)
            return hit[1].model_copy(update={"cached": True})
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[MediaFormats] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            found = await probe()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            future.set_result(found)
            self._entries[key] = (time.monotonic(), found)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return found
        finally:
            del self._inflight[key]
