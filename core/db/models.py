"""Database tables: jobs (one download each), requests (one person's ask each) and worker heartbeats."""

from __future__ import annotations

import enum
import unicodedata
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# One naming convention so Alembic names constraints the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def search_text(text: str | None) -> str | None:
    """Text as history search compares it: Unicode case folding ("Größe" and "GRÖSSE" both become "grösse")
    after compatibility normalisation. Stored beside titles and links because neither database folds more
    than ASCII in SQL (SQLite's lower(), and PostgreSQL's under the C collation)."""
    if text is None:
        return None
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


class RequestStatus(enum.StrEnum):
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    cache_key: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(16))
    # cache_key + variant while the job is queued, running, or done with its file retained; NULL otherwise.
    # A unique index on it makes the database, not a process, decide which request starts a download.
    dedup_key: Mapped[str | None] = mapped_column(String(600), unique=True)
    media_key: Mapped[str | None] = mapped_column(String(600), index=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED, index=True)
    seq: Mapped[int] = mapped_column(Integer, default=1)

    downloaded_bytes: Mapped[int | None] = mapped_column(BigInteger)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    speed: Mapped[float | None] = mapped_column(Float)
    eta: Mapped[float | None] = mapped_column(Float)

    title: Mapped[str | None] = mapped_column(Text)
    # search_text(title), written with every title: what history search matches.
    search_title: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[float | None] = mapped_column(Float)
    extractor: Mapped[str | None] = mapped_column(String(64))
    media_id: Mapped[str | None] = mapped_column(String(256))
    ext: Mapped[str | None] = mapped_column(String(16))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    uploader: Mapped[str | None] = mapped_column(Text)
    filesize: Mapped[int | None] = mapped_column(BigInteger)
    filename: Mapped[str | None] = mapped_column(Text)
    storage_key: Mapped[str | None] = mapped_column(Text, index=True)
    retained: Mapped[bool] = mapped_column(Boolean, default=False)
    cached_from: Mapped[str | None] = mapped_column(String(32))

    # A copy made to fit a destination's size limit ("fit:<bytes>", "fit:<bytes>:split"), made from the
    # finished job `source_job_id`; `fit_method` says how (smaller_format | reencode | split) and `parts`
    # lists the files of a split ([{key, filename, size}]).
    variant: Mapped[str | None] = mapped_column(String(64))
    source_job_id: Mapped[str | None] = mapped_column(String(32))
    fit_method: Mapped[str | None] = mapped_column(String(16))
    parts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # A playlist: the job ends once expanded into `entries` ([{url, title}], at most MAX_PLAYLIST_ITEMS,
    # `playlist_total` items in the whole list when the site says); each entry is a job of its own, and
    # each request on the playlist gets a child request per entry. `parent_id`: the playlist a job came from.
    entries: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    playlist_total: Mapped[int | None] = mapped_column(Integer)
    parent_id: Mapped[str | None] = mapped_column(String(32), index=True)
    # What the person chose beyond kind and quality (part of the dedup key): a format the site offers, and
    # subtitle languages; `subtitles_missing` lists the languages the media turned out not to have.
    format_id: Mapped[str | None] = mapped_column(String(128))
    subtitle_langs: Mapped[list[str] | None] = mapped_column(JSON)
    subtitles_missing: Mapped[list[str] | None] = mapped_column(JSON)
    # An audio job's file format when the person chose one other than the operator's (None: theirs).
    audio_format: Mapped[str | None] = mapped_column(String(8))
    # A video made to play on every phone (H.264 + AAC in MP4; part of the dedup key): chats ask for it.
    playable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    upload_date: Mapped[str | None] = mapped_column(String(8))
    # Chapters kept in the file (None: not read), and what a delivery adds about the cut ("2 sponsor segments
    # removed, 1:12 saved", or why none were).
    chapters: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    # A queued job held back by its site's pacing (issue 23): the site's name as people know it, and how many
    # jobs of that site are before it (None: the site refuses us for now). Set while it waits, cleared when it
    # is claimed or ends, so a plain read says what the live events say.
    waiting_for: Mapped[str | None] = mapped_column(Text)
    waiting_ahead: Mapped[int | None] = mapped_column(Integer)
    # Files stored beside the media, by name ("thumbnail", "subtitles.en"): {name: {key, filename, size}}.
    assets: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)

    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = (Index("ix_jobs_status_lease", "status", "lease_until"),)


class Request(Base):
    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    search_url: Mapped[str | None] = mapped_column(Text)  # search_text(url), for history search
    kind: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(16))
    # Where the result goes: chat + message ids, interaction token... whatever the front end needs.
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=RequestStatus.ACTIVE)
    outcome: Mapped[str] = mapped_column(String(16))  # queued | coalesced | cached
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The client's Idempotency-Key and a hash of what it asked for: the unique index makes a repeated
    # submission (from any process) find this request. Cleared when reused after IDEMPOTENCY_TTL.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    idempotency_hash: Mapped[str | None] = mapped_column(String(64))
    # A request made on behalf of another: a playlist item, or a copy made to fit a chat's limit. The
    # parent's front end delivers it; cancelling the parent cancels it.
    parent_id: Mapped[str | None] = mapped_column(String(32), index=True)
    # Removed from the person's history (the web app's "Delete"): never listed again.
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_requests_owner", "source", "user_id", "created_at"),
        Index("ix_requests_undelivered", "source", "delivered_at", "status"),
        Index("ix_requests_idempotency", "source", "user_id", "idempotency_key", unique=True),
        # The operator's figures read requests by time (core.admin, 0015).
        Index("ix_requests_created_at", "created_at"),
    )


class WebhookStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its request to end, or for its next try
    DELIVERED = "delivered"
    FAILED = "failed"


class Webhook(Base):
    """A request's completion callback: POSTed once the request ends, retried with back-off. A sender
    claims each try with a conditional update, so one process makes it however many look."""

    __tablename__ = "webhooks"

    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=WebhookStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the next try is due (NULL: as soon as the request ends); while a try runs, when its claim lapses.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_webhooks_due", "status", "next_attempt_at"),)


class Worker(Base):
    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    running: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Only a SHA-256 of the key is stored; `prefix` lets people tell keys apart in listings.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An operator's key (`mediabot apikey create NAME --admin`): it may also call /api/v1/admin/... (0015).
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class UserPrefs(Base):
    """Per-user defaults chosen in a chat front end (/settings)."""

    __tablename__ = "user_prefs"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="video")
    quality: Mapped[str] = mapped_column(String(16), default="best")
    # Answer a link with the formats it offers instead of downloading the default at once.
    ask_format: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Subtitle languages asked for with every link, comma-separated ("" for none).
    subtitles: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # The locale picked with /language ("pt_BR"); NULL: the one the person's app reports.
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Sponsor segments of every plain link: "remove" or "mark" (core.cuts.sponsorblock); NULL keeps them.
    sponsorblock: Mapped[str | None] = mapped_column(String(8), nullable=True)
    # Answer this person's inline queries (@bot LINK in any chat); off: they get an explanation, nothing else.
    inline: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GroupSettings(Base):
    """A group chat's own settings, changed by its admins (/groupsettings)."""

    __tablename__ = "group_settings"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Act on every link posted in the group, not only on those addressed to the bot.
    every_link: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_by: Mapped[str | None] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryCache(Base):
    """A platform's own reference to a file it already has (Telegram's file_id), per media variant, so the
    next request is answered without downloading or uploading."""

    __tablename__ = "delivery_cache"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    variant_key: Mapped[str] = mapped_column(String(600), primary_key=True)
    file_ref: Mapped[str] = mapped_column(Text)
    file_type: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Subscription(Base):
    """A channel or playlist followed into one place (a Telegram chat, a Discord channel, an API key): every
    new entry becomes an ordinary request delivered there. A worker checks it under a lease (`lease_until`),
    so one worker at a time does, however many run."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    cache_key: Mapped[str] = mapped_column(String(512))  # the normalised url
    kind: Mapped[str] = mapped_column(String(16))
    quality: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # the owner: front end + user
    user_id: Mapped[str] = mapped_column(String(128))
    # Where new entries go, as the front end stores a request's target ("telegram:<chat>", "api:<key>"...):
    # one subscription per place, link and choice.
    place: Mapped[str] = mapped_column(String(160))
    target: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    callback_url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    # Entries seen (normalised links, newest first; None until the first check) and how many of the newest
    # the first check delivers (`backfill`; 0: none of the back catalogue).
    seen: Mapped[list[str] | None] = mapped_column(JSON)
    backfill: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When the owner was told it was paused (once); NULL while nobody has been told yet.
    told_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_check_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker_id: Mapped[str | None] = mapped_column(String(64))
    checks: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_subscriptions_place", "place", "cache_key", "kind", "quality", unique=True),
        Index("ix_subscriptions_owner", "source", "user_id"),
    )


# -- the operator's controls (issue 24 item 4, migration 0015) ------------------------------------------------


class Ban(Base):
    """A person who may not use the service from one front end (`source` + their id there). Read on every
    submission by whichever process takes it, so a ban holds everywhere at once."""

    __tablename__ = "bans"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    # Who banned: "telegram:<id>", "discord:<id>" or "api:<key name>".
    banned_by: Mapped[str] = mapped_column(String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QuotaOverride(Base):
    """One person's own number of downloads per hour, in place of MEDIABOT_USER_REQUESTS_PER_HOUR."""

    __tablename__ = "quota_overrides"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    requests_per_hour: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(160))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
