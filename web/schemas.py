"""The API's request and response models. They validate requests, shape responses and generate the
OpenAPI document, so the three cannot drift apart."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.i18n import N_
from core.jobs.formats import Playlist
from core.jobs.views import ErrorInfo, Progress

Quality = Literal["best", "2160", "1440", "1080", "720", "480", "360", "240", "144"]
Status = Literal["queued", "running", "done", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
KINDS: tuple[str, ...] = ("video", "audio")
# The same rules as the core's (core.jobs.check_choices), stated here so the OpenAPI document carries them.
FORMAT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
LANG_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
# Text without control characters: a link holding NUL, ESC or a line break is no link (and NUL cannot be
# stored in PostgreSQL text).
PRINTABLE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A link as the OpenAPI document describes it: http(s), then no control characters. The server reads a link
# more closely than a pattern can (host, port, length, then the site itself): what it refuses then is a 422.
LINK_PATTERN = r"^ *[Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x1f\x7f-\x9f]*$"
# Query parameters, checked by the handlers with the same patterns the document states.
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,200}$"
LIMIT_PATTERN = r"^[0-9]{1,3}$"
STATUS_LIST_PATTERN = r"^({s})(,({s}))*$".format(s="|".join(STATUSES))
# `after` on /api/v1/events: Unix seconds, or an ISO 8601 time to the minute at least (a job's updated_at).
# A "+" before the offset arrives as a space when the client did not encode it.
SECONDS_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,9})?$"
TIME_PATTERN = (
    r"^([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):([0-5][0-9])"
    r"(:([0-5][0-9])(\.([0-9]{1,6}))?)?(Z|([+ -])([01][0-9]|2[0-3]):([0-5][0-9]))?$"
)
MAX_SEQ = 2**62
# The WebSocket handshake (RFC 6455), as the server checks it before upgrading.
WS_UPGRADE_PATTERN = r"^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"
WS_CONNECTION_PATTERN = r"(^|,) *[Uu][Pp][Gg][Rr][Aa][Dd][Ee] *(,|$)"
WS_KEY_PATTERN = r"^[A-Za-z0-9+/]{22}==$"
WS_VERSION = "13"
MAX_SUBTITLE_LANGS = 8
Lang = Annotated[str, Field(pattern=LANG_PATTERN, max_length=64)]


def link_field(description: str) -> Any:
    """A link a request names: printable, and documented in the form we take (a link of another form is
    refused with 422 invalid_url, in words, rather than by the schema)."""
    return Field(
        min_length=1,
        max_length=4096,
        pattern=PRINTABLE_PATTERN,
        description=description,
        json_schema_extra={"pattern": LINK_PATTERN},
    )


def callback_field(description: str) -> Any:
    """An optional callback address, documented like a link."""
    return Field(
        None,
        min_length=1,
        max_length=2048,
        pattern=PRINTABLE_PATTERN,
        json_schema_extra={"pattern": LINK_PATTERN},
        description=description,
    )


class Section(BaseModel):
    """A part of the media, from `start` to `end`."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"start": "1:20", "end": "1:45"}]}
    )

    start: float | str | None = Field(None, description="Seconds or h:mm:ss; 0 when left out.")
    end: float | str | None = Field(None, description="Seconds or h:mm:ss; the media's end when left out.")


class JobCreate(BaseModel):
    """A download to start."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"url": "https://example.com/v.mp4"}]}
    )

    url: str = link_field("The page or media link (http or https).")
    kind: Literal["video", "audio"] = Field("video", description="`audio` extracts the sound track only.")
    quality: Quality = Field("best", description="`best`, or a cap on the video height. Ignored for audio.")
    callback_url: str | None = callback_field(
        "An http(s) address to POST the job to (signed) once it is done, failed or cancelled; for a playlist, "
        "once every item has ended (one call, with the items). Private addresses are refused like download links."
    )
    format_id: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        pattern=FORMAT_ID_PATTERN,
        description="A `format_id` from GET /api/v1/formats for this link: that exact format (a video format "
        "without sound gets the best sound merged in); `kind` and `quality` then only name the job. A format "
        "the link does not offer fails the job with `unknown_format`.",
    )
    subtitles: list[Lang] = Field(
        default_factory=list,
        max_length=MAX_SUBTITLE_LANGS,
        description="Subtitle languages (`en`, `de`, `pt-BR`; see `subtitles` of GET /api/v1/formats): each "
        "is stored as an .srt file and, in an mp4 video, embedded as a subtitle track. Languages the media "
        "lacks do not fail the job: they are listed in the job's `subtitles_missing`.",
    )
    audio_format: Literal["m4a", "mp3", "opus"] | None = Field(
        None,
        description="For `kind: audio`, the file's format; null: the source's own sound when it already is "
        "MP3, AAC (m4a) or Opus, else the server's MEDIABOT_AUDIO_FORMAT (the job's `ext` says what came "
        "out). Ignored for video.",
    )
    playable: bool = Field(
        False,
        # Only true or false, as the document says (lax validation would take 0, 1, "yes"...).
        strict=True,
        description="For `kind: video`, a video every phone plays: H.264 with AAC sound in MP4 (an H.264 "
        "format the site offers at the chosen height or at least half of it, else the file converted). "
        "false: the site's original (it may be VP9 or AV1, which iPhones do not play in chats). Ignored for "
        "audio.",
    )
    section: Section | None = Field(
        None,
        description="A clip of the media instead of all of it: `start` and `end` as seconds (80, 80.5) or "
        'clock times ("1:20", "1:02:03"); `end` left out runs to the end. The first frame is the one at '
        "`start` (the picture is re-encoded as H.264; sound is copied). Cut from a stored download of the "
        "same media when there is one (no download), else the whole media is downloaded first (shared with "
        "anyone asking for it); media longer than the duration limit is never stored whole, so only the "
        "clip's range is downloaded and only the clip's length counts. An end before the start, a start past the media's end or a clip longer than "
        "the duration limit: 422 `invalid_section` or `too_long`.",
    )
    split_chapters: bool = Field(
        False,
        strict=True,
        description="Deliver each chapter of the media as a file of its own: the job becomes a group, like a "
        'playlist (`playlist`, `items`), whose items are the chapters, titled "3/7 · Chapter name" (variant '
        "`chapter:N:START-END`), each cut from one download of the media; cancelling the group cancels every "
        "chapter. Media without chapters fails with `invalid_request`.",
    )
    sponsorblock: Literal["remove", "mark"] | None = Field(
        None,
        description="Sponsor, self-promotion and intro segments as SponsorBlock knows them: `remove` cuts "
        "them out, `mark` keeps them as chapters. The job's `note` says what was done (\"2 sponsor "
        "segments removed, 1:12 saved\"); when SponsorBlock can't be reached the file is delivered as it "
        "is, with a note saying so.",
    )


class FilePart(BaseModel):
    """One file of a download delivered in parts, numbered from 1."""

    index: int
    filename: str
    size: int = Field(description="Bytes.")
    file_url: str | None = Field(None, description="A link to this part, like `file_url`; set when done.")


class SubtitleFile(BaseModel):
    """One .srt file made for a finished job."""

    lang: str
    filename: str
    size: int = Field(description="Bytes.")
    url: str | None = Field(None, description="A link to the .srt file, like `file_url`; set when done.")


class Job(BaseModel):
    """One of your downloads. `id` is yours alone: two keys asking for the same link share the download
    but get different ids.

    A playlist or channel link becomes a job with `playlist` and `items`: one job per entry (at most
    MEDIABOT_MAX_PLAYLIST_ITEMS), each with its own `id`, `status`, `progress` and `file_url`, and
    `parent_id` set to the playlist's `id`. The playlist's own `status` sums its items up: `queued` or
    `running` while the link is being read; then `running` while any item is queued or running; once every
    item has ended, `done` if at least one item is done, else `failed` if one failed, else `cancelled`. A
    playlist has no file of its own (`file_url` stays null)."""

    id: str
    seq: int = Field(
        description="Grows with every change of the download (of a playlist: of any of its items); a "
        "WebSocket reconnecting with `?after=seq` gets only newer states."
    )
    url: str
    kind: Literal["video", "audio"]
    quality: str
    status: Status
    progress: Progress
    title: str | None = None
    duration: float | None = Field(None, description="Seconds.")
    filename: str | None = None
    filesize: int | None = Field(None, description="Bytes.")
    ext: str | None = None
    width: int | None = None
    height: int | None = None
    file_url: str | None = Field(
        None,
        description="A link to the file, valid for MEDIABOT_LINK_TTL_S seconds; set when status is done.",
    )
    cached: bool = Field(
        False, description="True when the file came from an earlier download of the same media."
    )
    outcome: Literal["queued", "coalesced", "cached"] = Field(
        description="What the submission did: started a download, joined a running one, or used a stored file."
    )
    error: ErrorInfo | None = None
    waiting_for: str | None = Field(
        None,
        description="While queued behind the pacing of its site: the site's name (e.g. YouTube).",
    )
    ahead: int | None = Field(
        None,
        description="With waiting_for: how many downloads of that site are before this one; null while "
        "the site refuses downloads for now.",
    )
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    parts: list[FilePart] | None = Field(
        None, description="Set when the file comes in parts (each with its own link); null otherwise."
    )
    parent_id: str | None = Field(
        None,
        description="The `id` of the job this one was made for (a playlist's item names its playlist); null "
        "for a job you submitted.",
    )
    playlist: Playlist | None = Field(
        None,
        description="Set on a playlist or channel link once it has been read: `count` items taken (at most "
        "MEDIABOT_MAX_PLAYLIST_ITEMS), `total` in the whole list when the site says (else null).",
    )
    items: list[Job] | None = Field(
        None, description="A playlist's items, in playlist order, each a whole job; null for other jobs."
    )
    uploader: str | None = Field(None, description="The artist or channel, when the site says.")
    upload_date: str | None = Field(None, description="YYYYMMDD, when the site says.")
    variant: str | None = Field(
        None,
        description="What was made from the download: `clip:START-END` (seconds), `chapters` (a split: its "
        "items are `chapter:N:START-END`), "
        "`sb=remove:...`/`sb=mark:...`, or a copy made to fit a size (`fit:BYTES`); null for the media as it is.",
    )
    chapters: int | None = Field(None, description="Chapters kept in the file (or items of a chapter split).")
    note: str | None = Field(
        None, description="What was done to the file, in a sentence (sponsor segments removed, or why not)."
    )
    format_id: str | None = Field(
        None, description="The format asked for; null when chosen by `kind` and `quality`."
    )
    audio_format: str | None = Field(
        None, description="The audio format asked for; null when none was (see `ext` for what came out)."
    )
    playable: bool = Field(
        False, description="Whether a video every phone plays (H.264 + AAC in MP4) was asked for."
    )
    subtitle_langs: list[str] = Field(default_factory=list, description="The subtitle languages asked for.")
    subtitles: list[SubtitleFile] = Field(
        default_factory=list, description="The .srt files made, one per language found; set when done."
    )
    subtitles_missing: list[str] = Field(
        default_factory=list, description="Languages asked for that the media has no subtitles in."
    )
    thumbnail_url: str | None = Field(
        None,
        description="A link to the job's thumbnail (JPEG, at most 320 px a side and 200 KB), like `file_url`; "
        "set when done, null when the media has none.",
    )


class JobList(BaseModel):
    items: list[Job] = Field(
        description="The jobs you submitted, newest first; playlist items appear inside their playlist's "
        "`items`, not here."
    )
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class JobEvent(BaseModel):
    """One WebSocket message: the job's whole state after a change (for a playlist item, `job.parent_id`
    is the playlist's id)."""

    type: Literal["job"] = "job"
    job: Job


class ErrorResponse(BaseModel):
    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ComponentHealth(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "fail"]
    latency_ms: float
    error: str | None = None


class HealthDetailed(BaseModel):
    status: Literal["ok", "fail"]
    components: dict[str, ComponentHealth]


class SubscriptionCreate(BaseModel):
    """A channel or playlist to follow: each new entry becomes a job of this key."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"url": "https://example.com/channel"}]}
    )

    url: str = link_field("The channel or playlist link (http or https).")
    kind: Literal["video", "audio"] = Field("video", description="`audio` extracts the sound track only.")
    quality: Quality = Field("best", description="`best`, or a cap on the video height. Ignored for audio.")
    callback_url: str | None = callback_field(
        "An http(s) address to POST each new entry's job to (signed) once it ends, as for POST /api/v1/jobs. "
        "Without one, follow the jobs on the key's WebSocket (/api/v1/events)."
    )
    backfill: int = Field(
        0,
        ge=0,
        le=50,
        description="How many of the newest entries the first check downloads; 0 (the default): none of "
        "the back catalogue, only entries that appear after subscribing.",
    )

    @field_validator("backfill", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        # JSON has numbers, not ints (40.0 is 40), but true and "3" are no numbers: lax mode would take them.
        if isinstance(value, bool | str):
            raise ValueError(N_("must be a whole number"))
        return value


class SubscriptionOut(BaseModel):
    id: str
    url: str
    kind: Literal["video", "audio"]
    quality: str
    title: str | None = Field(None, description="The channel's title, once checked.")
    callback_url: str | None = None
    paused: bool = Field(description="True after the channel failed to be read several times in a row.")
    failures: int = Field(description="Failed checks in a row.")
    last_error: str | None = Field(None, description="Why the last check failed, in one sentence.")
    checks: int
    delivered: int = Field(description="Entries made into jobs so far.")
    created_at: datetime
    checked_at: datetime | None = None
    next_check_at: datetime


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut] = Field(description="Your subscriptions, oldest first.")
