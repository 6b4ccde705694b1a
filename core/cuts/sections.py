"""A section of a media file, as people write it: "1:20-1:45", "80-105", "1:20" (to the end), "1:02:03.5",
or the API's {"start": "1:20", "end": 105}.

Parsing checks what the text alone can tell (a time that isn't one, an end before the start); `Section.check`
checks the rest once the media's duration is known (a start past the end, a clip longer than the limit).
Each refusal is one sentence the person can act on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidRequest, TooLong
from core.i18n import N_, _
from core.words import human_duration

# A section longer than this in writing is not a time ("99999999:00"): refused before float overflow games.
MAX_SECONDS = 30 * 24 * 3600.0
# Times are kept to the millisecond, so "80", "1:20" and "80.0004" are one clip in the cache.
_PLACES = 3

_NUMBER = r"\d+(?:[.,]\d+)?"
# m:ss or h:mm:ss; minutes may run past 59 when there are no hours ("90:00").
_CLOCK = r"(?:\d+:)?\d+:\d{1,2}(?:[.,]\d+)?"
_TIME = rf"(?:{_CLOCK}|{_NUMBER})"
# Phones turn "-" into en or em dashes; people also write "to" or "..".
_DASH = r"\s*(?:-|–|—|\.\.|to)\s*"
_RANGE = re.compile(rf"^\s*(?P<start>{_TIME})(?:{_DASH}(?P<end>{_TIME})?)?\s*$", re.IGNORECASE)
# After a link: a range with both ends, or a clock time ("1:20", "1:20-"); never a lone number ("LINK 2" is
# not a clip from 0:02, "LINK 5 to go" not one from 0:05).
_AFTER_LINK = re.compile(
    rf"(?P<url>https?://\S+)[ \t]+(?P<range>{_TIME}{_DASH}{_TIME}|{_CLOCK}(?:\s*[-–—])?)(?=[\s.,;!?)]|$)",
    re.IGNORECASE,
)
_NUMBER_ONLY = re.compile(r"\d+(?:\.\d+)?")
_CLOCK_ONLY = re.compile(r"(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d{1,2}(?:\.\d+)?)")


class InvalidSection(InvalidRequest):
    """Times that can't be a clip of this media; the API answers 422 (web/errors.py STATUS_BY_CODE)."""

    code = "invalid_section"
    default_message = 'The clip should be written as start-end, for example "1:20-1:45" or "80-105".'


class SectionTooLong(TooLong):
    """A clip longer than the duration limit (code too_long, as for whole media over it)."""


@dataclass(frozen=True)
class Section:
    """Seconds from the start of the media; `end` None runs to the end."""

    start: float
    end: float | None = None

    def __post_init__(self) -> None:
        for value in (self.start, self.end):
            if value is not None and (not math.isfinite(value) or value < 0 or value > MAX_SECONDS):
                raise InvalidSection()
        if self.end is not None and self.end <= self.start:
            raise InvalidSection(
                _("The clip must end after it starts: {end} is not after {start}.").format(
                    end=format_time(self.end), start=format_time(self.start)
                )
            )

    @classmethod
    def of(cls, start: float, end: float | None = None) -> Section:
        """Times rounded to the millisecond, as every parser here makes them."""
        return cls(round(float(start), _PLACES), None if end is None else round(float(end), _PLACES))

    def key(self) -> str:
        """The canonical text of the section for cache and coalescing keys: "80.000-105.000", "80.000-"."""
        end = "" if self.end is None else f"{self.end:.{_PLACES}f}"
        return f"{self.start:.{_PLACES}f}-{end}"

    def variant(self, *, animation: bool = False) -> str:
        """The job variant of this clip ("clip:80.000-105.000", "gif:..."), at most 64 characters as the
        jobs.variant column allows."""
        return f"{'gif' if animation else 'clip'}:{self.key()}"

    @property
    def length(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def label(self) -> str:
        """The section as people write it: "1:20-1:45", "1:20-" for one that runs to the end."""
        return f"{format_time(self.start)}-{'' if self.end is None else format_time(self.end)}"

    def file_label(self) -> str:
        """The section in a file name: "1m20s-1m45s". Not the clock: ':' is refused by some file systems, and
        "1.20-1.45" (what replacing it gave) reads as decimals."""
        return f"{_file_time(self.start)}-{'end' if self.end is None else _file_time(self.end)}"

    def check(self, duration: float | None, limit_s: float | None = None) -> Section:
        """This section made concrete for media of `duration` seconds: an end past the media (or none)
        becomes its end. Raises InvalidSection (starts at or past the end) or SectionTooLong (longer than
        `limit_s`). With no duration known, only the limit is checked, on a section that has an end."""
        end = self.end
        if duration is not None and duration > 0:
            if self.start >= duration:
                raise InvalidSection(
                    _("The clip starts at {start}, but the media is only {duration} long.").format(
                        start=format_time(self.start), duration=format_time(duration)
                    )
                )
            end = duration if end is None else min(end, duration)
        closed = Section.of(self.start, end) if end is not None else self
        length = closed.length
        if limit_s is not None and length is not None and length > limit_s:
            raise SectionTooLong(
                _("The clip is {length} long; the limit is {limit}.").format(
                    length=human_duration(length), limit=human_duration(limit_s)
                )
            )
        return closed


def format_time(seconds: float) -> str:
    """Seconds as a clock: "0:05", "1:20", "1:02:03", "1:20.5" (milliseconds only when there are some)."""
    millis = round(seconds * 1000)
    whole, ms = divmod(millis, 1000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    return f"{text}.{ms:03d}".rstrip("0") if ms else text


def _file_time(seconds: float) -> str:
    """Seconds as "45s", "1m20s", "1h02m03s", "1m20.5s"."""
    whole = int(seconds)
    fraction = f"{seconds - whole:.3f}".rstrip("0").rstrip(".")[1:]  # ".5", or "" for a whole second
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}{fraction}s"
    return f"{minutes}m{secs:02d}{fraction}s" if minutes else f"{secs}{fraction}s"


def parse_time(value: str | float | int) -> float:
    """One time: seconds as a number or text ("80", "80.5"), or a clock ("1:20", "1:02:03.250")."""
    if isinstance(value, bool):  # bool is an int: true is not one second
        raise InvalidSection()
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", ".")
        if _NUMBER_ONLY.fullmatch(text):
            seconds = float(text)
        elif clock := _CLOCK_ONLY.fullmatch(text):
            hours, minutes, secs = int(clock["h"] or 0), int(clock["m"]), float(clock["s"])
            if secs >= 60 or (clock["h"] is not None and minutes >= 60):
                raise InvalidSection(f'"{value.strip()}" is not a time: minutes and seconds go up to 59.')
            seconds = hours * 3600 + minutes * 60 + secs
        else:
            raise InvalidSection(f'"{value.strip()[:20]}" is not a time: write it as 80, 1:20 or 1:02:03.')
    else:
        raise InvalidSection()
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_SECONDS:
        raise InvalidSection()
    return seconds


def parse_section(value: str | Mapping[str, Any]) -> Section:
    """A section from text ("1:20-1:45", "80-105", "1:20", "1:20-") or the API's {"start", "end"} (each a
    number of seconds or text as above; "start" may be left out when "end" is given, "end" to run to the
    end). Raises InvalidSection."""
    if isinstance(value, Mapping):
        unknown = set(value) - {"start", "end"}
        if unknown:
            raise InvalidSection(
                _("A section has only start and end, not {names}.").format(
                    names=", ".join(sorted(map(str, unknown)))
                )
            )
        start_raw, end_raw = value.get("start"), value.get("end")
        if start_raw is None and end_raw is None:
            raise InvalidSection(N_("A section needs a start, an end, or both."))
        start = 0.0 if start_raw is None else parse_time(start_raw)
        end = None if end_raw is None else parse_time(end_raw)
        return Section.of(start, end)
    if not isinstance(value, str):
        raise InvalidSection()
    match = _RANGE.match(value)
    if match is None:
        raise InvalidSection()
    end_text = match.group("end")
    return Section.of(parse_time(match.group("start")), parse_time(end_text) if end_text else None)


@dataclass(frozen=True)
class LinkSection:
    url: str
    section: Section
    span: tuple[int, int]  # where the range is written in the text, to take it out of what else is read


def find_range_after_link(text: str) -> LinkSection | None:
    """The section written right after a link ("https://… 1:20-1:45", "https://… 1:20"), as Telegram
    messages give one; None when the first link with something after it has no range there. A lone number
    after a link is not taken as a time. Raises InvalidSection for a range that is written but impossible
    (an end before its start)."""
    match = _AFTER_LINK.search(text)
    if match is None:
        return None
    return LinkSection(
        url=match.group("url"), section=parse_section(match.group("range")), span=match.span("range")
    )


__all__ = [
    "InvalidSection",
    "LinkSection",
    "Section",
    "SectionTooLong",
    "find_range_after_link",
    "format_time",
    "parse_section",
    "parse_time",
]
