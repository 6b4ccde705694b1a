"""Sponsor, self-promotion and intro segments from a SponsorBlock API, and what they become for yt-dlp.

yt-dlp's own SponsorBlock post-processor asks only for the sites it maps (YouTube) and says "SponsorBlock is
not supported for Generic" for the rest, so we ask the configured API ourselves (MEDIABOT_SPONSORBLOCK_URL:
https://sponsor.ajay.app, or the tests' fake) for the media's id, with the extractor as the service, and
hand the answer to yt-dlp's ModifyChapters post-processor in the shape its SponsorBlock post-processor
writes (`info["sponsorblock_chapters"]`): one path for YouTube and any other site, tests included.

The API (wiki.sponsor.ajay.app/w/API_Docs): `GET {base}/api/skipSegments?videoID=ID&categories=[...]
&actionTypes=["skip"]&service=YouTube` answers 200 with `[{"segment": [start, end], "UUID", "category",
"actionType", "videoDuration", ...}]`, or 404 when it knows no segments for the video. The answer is
untrusted: read up to MAX_BODY_BYTES, only segments in the asked categories with sane times are kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from core.errors import MediabotError

log = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = ("sponsor", "selfpromo", "intro")
Mode = Literal["remove", "mark"]
MODES: tuple[str, ...] = ("remove", "mark")
TIMEOUT_S = 5.0
MAX_BODY_BYTES = 1024 * 1024
MAX_SEGMENTS = 100
# yt-dlp's SponsorBlockPP names (its CATEGORIES), so marked chapters read as they do with yt-dlp itself.
CATEGORY_TITLES = {
    "sponsor": "Sponsor",
    "selfpromo": "Unpaid/Self Promotion",
    "intro": "Intermission/Intro Animation",
}
# The words a delivery uses for each category.
CATEGORY_WORDS = {"sponsor": "sponsor", "selfpromo": "self-promotion", "intro": "intro"}
# yt-dlp extractor keys -> SponsorBlock service names (wiki "Types#service"); others go as they are, so the
# tests' fake answers for "Generic" and a real server answers 400/404 (no segments) for sites it doesn't know.
SERVICES = {"youtube": "YouTube", "youtubetab": "YouTube", "peertube": "PeerTube"}


class SponsorBlockUnavailable(MediabotError):
    """The API did not answer usably (timeout, refused, 5xx, not JSON): the media goes out as it is."""

    code = "sponsorblock_unavailable"
    default_message = "SponsorBlock did not answer, so no segments were removed."


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    category: str
    uuid: str = ""
    video_duration: float | None = None  # the length SponsorBlock's submitter saw; 0/None when unknown

    @property
    def length(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class SponsorChoice:
    """What a request asked: remove or mark (as chapters) which categories."""

    mode: Mode = "remove"
    categories: tuple[str, ...] = CATEGORIES

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        unknown = set(self.categories) - set(CATEGORIES)
        if unknown or not self.categories:
            raise ValueError(f"categories must be among {CATEGORIES}")

    def key(self) -> str:
        """Canonical text for cache and coalescing keys: "sb=remove:intro,selfpromo,sponsor"."""
        return f"sb={self.mode}:{','.join(sorted(set(self.categories)))}"


def service_for(extractor_key: str) -> str:
    """The SponsorBlock service name of a yt-dlp extractor key (`info["extractor_key"]`, the jobs.extractor
    column), in any case."""
    return SERVICES.get(extractor_key.lower(), extractor_key)


class SponsorBlockClient:
    """One client per process (it holds an aiohttp session); `close()` on shutdown."""

    def __init__(
        self, base_url: str, *, timeout_s: float = TIMEOUT_S, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = session
        self._own_session = session is None

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def segments(
        self, media_id: str, *, service: str, categories: Sequence[str] = CATEGORIES
    ) -> list[Segment]:
        """The video's skip segments in `categories`, sorted by start; [] when the API knows none (404).
        Raises SponsorBlockUnavailable."""
        wanted = [c for c in CATEGORIES if c in set(categories)]
        params = {
            "videoID": media_id,
            "categories": json.dumps(wanted, separators=(",", ":")),
            "actionTypes": json.dumps(["skip"]),
            "service": service,
        }
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = f"{self.base_url}/api/skipSegments"
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._session.get(url, params=params, allow_redirects=False) as resp:
                    if resp.status == 404:  # the API's "no segments for this video"
                        return []
                    if resp.status == 400:
                        # A service or id the server doesn't take (a site SponsorBlock doesn't cover): none.
                        log.info("SponsorBlock refused %s:%s (400): no segments", service, media_id)
                        return []
                    if resp.status != 200:
                        log.warning("SponsorBlock answered %s for %s:%s", resp.status, service, media_id)
                        raise SponsorBlockUnavailable()
                    body = await resp.content.read(MAX_BODY_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("SponsorBlock unreachable for %s:%s: %s", service, media_id, type(exc).__name__)
            raise SponsorBlockUnavailable() from None
        if len(body) > MAX_BODY_BYTES:
            log.warning("SponsorBlock answer over %d bytes for %s:%s", MAX_BODY_BYTES, service, media_id)
            raise SponsorBlockUnavailable()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's limit
            log.warning("SponsorBlock answered something other than JSON for %s:%s", service, media_id)
            raise SponsorBlockUnavailable() from None
        return parse_segments(data, wanted)


def parse_segments(data: Any, categories: Iterable[str] = CATEGORIES) -> list[Segment]:
    """Segments from the API's answer, keeping only well-formed skip segments in `categories` (at most
    MAX_SEGMENTS, each UUID once), sorted by start."""
    if not isinstance(data, list):
        return []
    wanted = set(categories)
    seen: set[str] = set()
    found: list[Segment] = []
    for raw in data[: MAX_SEGMENTS * 4]:
        if not isinstance(raw, dict) or raw.get("category") not in wanted:
            continue
        if raw.get("actionType", "skip") != "skip":
            continue
        times = raw.get("segment")
        if not (isinstance(times, list) and len(times) == 2 and all(_number(t) for t in times)):
            continue
        start, end = float(times[0]), float(times[1])
        if start < 0 or end <= start:
            continue
        uuid = str(raw.get("UUID") or "")
        if uuid and uuid in seen:
            continue
        seen.add(uuid)
        duration = raw.get("videoDuration")
        found.append(
            Segment(
                start=start, end=end, category=str(raw["category"]), uuid=uuid,
                video_duration=float(duration) if _number(duration) and duration > 0 else None,
            )
        )  # fmt: skip
        if len(found) >= MAX_SEGMENTS:
            break
    return sorted(found, key=lambda s: (s.start, s.end))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def matching_duration(segments: Iterable[Segment], duration: float | None) -> list[Segment]:
    """Segments submitted for this length of video (yt-dlp's rule: within 1 s, or within 5 s and 5% of the
    segment), clamped to it; those of an older, longer or shorter upload are dropped."""
    kept = []
    for s in segments:
        start, end = (0.0 if s.start <= 1 else s.start), s.end
        if duration:
            if s.video_duration:
                diff = abs(duration - s.video_duration)
                if not (diff < 1 or (diff < 5 and diff / max(end - start, 1e-9) < 0.05)):
                    continue
            if start >= duration:
                continue
            if duration - end <= 1:
                end = duration
        kept.append(Segment(start, end, s.category, s.uuid, s.video_duration))
    return kept


def sponsor_chapters(segments: Iterable[Segment], duration: float | None) -> list[dict[str, Any]]:
    """`info["sponsorblock_chapters"]` for yt-dlp's ModifyChaptersPP, as its SponsorBlockPP writes them."""
    return [
        {
            "start_time": s.start,
            "end_time": s.end,
            "category": s.category,
            "title": CATEGORY_TITLES.get(s.category, s.category),
            "type": "skip",
            "_categories": [(s.category, s.start, s.end, CATEGORY_TITLES.get(s.category, s.category))],
        }
        for s in matching_duration(segments, duration)
    ]


def modify_chapters_options(choice: SponsorChoice, *, exact: bool = False) -> dict[str, Any]:
    """The post-processor entry (core.downloader's postprocessors list, or ModifyChaptersPP's keyword
    arguments without "key") that removes the chosen categories, or only marks them as chapters.

    Cuts are stream copies joined on keyframes unless `exact`: the length removed is right, but a segment
    that doesn't start and end on keyframes leaves up to a GOP of itself (or takes as much of what is kept),
    and a join may show two stray frames. `exact` re-encodes the whole video with keyframes forced at the
    cuts (yt-dlp's --force-keyframes-at-cuts): right to the frame, but minutes of encoding for a long video."""
    return {
        "key": "ModifyChapters",
        "remove_sponsor_segments": sorted(choice.categories) if choice.mode == "remove" else [],
        "remove_chapters_patterns": [],
        "remove_ranges": [],
        "sponsorblock_chapter_title": "[SponsorBlock]: %(category_names)l",
        "force_keyframes": exact,
    }


@dataclass(frozen=True)
class SavedNote:
    """What a delivery says: `text` is None when nothing was found (nothing worth saying)."""

    count: int
    saved_s: float
    text: str | None


def saved_note(
    segments: Sequence[Segment], *, mode: Mode = "remove", duration: float | None = None
) -> SavedNote:
    """ "2 sponsor segments removed, 1:12 saved", "3 segments (2 sponsor, 1 intro) removed, 45 s saved",
    "2 sponsor segments marked as chapters". Overlapping segments are counted once in the time saved."""
    if duration:
        segments = matching_duration(segments, duration)
    count = len(segments)
    saved = _union_length(segments)
    if not count:
        return SavedNote(0, 0.0, None)
    by_category: dict[str, int] = {}
    for s in segments:
        by_category[s.category] = by_category.get(s.category, 0) + 1
    noun = "segment" if count == 1 else "segments"
    if len(by_category) == 1:
        what = f"{count} {CATEGORY_WORDS.get(segments[0].category, segments[0].category)} {noun}"
    else:
        detail = ", ".join(f"{n} {CATEGORY_WORDS.get(c, c)}" for c, n in by_category.items())
        what = f"{count} {noun} ({detail})"
    if mode == "mark":
        return SavedNote(count, 0.0, f"{what} marked as chapters")
    return SavedNote(count, saved, f"{what} removed, {_short_duration(saved)} saved")


def _union_length(segments: Iterable[Segment]) -> float:
    total, reach = 0.0, -math.inf
    for s in sorted(segments, key=lambda s: s.start):
        if s.end <= reach:
            continue
        total += s.end - max(s.start, reach)
        reach = s.end
    return total


def _short_duration(seconds: float) -> str:
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
