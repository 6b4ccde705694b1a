"""Settings: one object, built once in main() and passed down."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split_list(value: object) -> object:
    # Lists come from the environment as comma-separated text ("generic,youtube").
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIABOT_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str = ""
    redis_url: str | None = None

    storage: Literal["local", "s3"] | None = None
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    # The S3 endpoint as people reach it, for presigned links (e.g. http://localhost:9500 when the
    # service itself talks to http://minio:9000); default: the endpoint itself.
    s3_public_url: str | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    secret_key: str = ""

    max_filesize_mb: float = Field(default=2000, gt=0)
    max_duration_s: int = Field(default=14400, gt=0)
    link_ttl_s: int = Field(default=86400, gt=0)
    retention_hours: float = Field(default=72, gt=0)
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    allow_private_urls: bool = False
    # host or host:port entries that may be fetched although they resolve to a private address
    # (an operator's own media server); everything else private stays refused.
    allowed_private_hosts: Annotated[list[str], NoDecode] = []
    # yt-dlp extractor names that may be used ("youtube", "vimeo", "generic"...); empty means all of them.
    allowed_extractors: Annotated[list[str], NoDecode] = []
    ffmpeg: str = "auto"
    # The SponsorBlock API asked for sponsor, self-promotion and intro segments (core.cuts.sponsorblock).
    sponsorblock_url: str = "https://sponsor.ajay.app"
    # The JavaScript runtime yt-dlp solves YouTube's player challenges with: a path to a Deno binary, or
    # "auto" for the one the `deno` package put next to this Python (else `deno` on the PATH).
    js_runtime: str = "auto"
    # Base URL of a bgutil PO token provider server (http://pot-provider:4416), for YouTube's PO tokens;
    # unset: none is asked.
    pot_provider_url: str | None = None
    # Netscape cookies.txt files named by domain (youtube.com.txt), for sites that want a login.
    cookies_dir: Path | None = None
    audio_format: Literal["m4a", "mp3", "opus"] = "m4a"  # core.schemas.AUDIO_FORMATS
    # A JPEG thumbnail for every video (the site's, else a frame) and audio with a picture; chats show it.
    thumbnails: bool = True
    # Audio files carry title, artist, date and the site's picture as cover art.
    tag_audio: bool = True
    # Chats ask for video every phone plays (H.264 + AAC in MP4: an H.264 format the site offers, else the
    # file converted); the API keeps the site's original unless a request asks (core.media.playable).
    chat_playable: bool = True
    # When a finished file is too big for a chat, the delivery planner tries, in order: a smaller format the
    # site offers (sizes known before downloading), a two-pass FFmpeg re-encode to the limit (CPU-heavy,
    # so off unless turned on), splitting into parts (Telegram only, off unless turned on), then a link.
    fit_smaller_format: bool = True
    reencode_to_fit: bool = False
    # A playlist or channel link becomes at most this many downloads (the rest is never fetched).
    max_playlist_items: int = Field(default=10, ge=1, le=500)
    # Subscriptions (channels and playlists followed into a chat): how often each is checked, and after how
    # many failed checks in a row it is paused (its owner told once).
    subscription_interval_s: float = Field(default=900, gt=0)
    subscription_max_failures: int = Field(default=5, ge=1)

    # Pacing per site (issue 23, core.pacing): `youtube=2/10s,instagram=1/30s,*=8` (at most N downloads of a
    # site at once across every worker, S seconds between two starts); proxies taken in turn
    # (`http://p:3128,socks5://u:pw@h:1080` or per site `youtube=http://p1:3128|http://p2:3128`); how long an
    # identity (cookies file + proxy) the site refused rests (doubling on repeats); how long a job keeps
    # trying while its site refuses every identity before it fails with rate_limited.
    site_limits: str = ""
    proxies: str = ""
    site_backoff_s: float = Field(default=60, gt=0)
    site_patience_s: float = Field(default=3600, ge=0)

    lease_s: float = Field(default=30, gt=1)
    max_attempts: int = Field(default=3, ge=1)
    reconcile_interval_s: float = Field(default=10, gt=0)
    stale_queued_s: float = Field(default=60, gt=0)
    retention_interval_s: float = Field(default=300, gt=0)
    shutdown_grace_s: float = Field(default=20, ge=0)
    # Keeping yt-dlp current (README "Keeping yt-dlp current"): links a new yt-dlp must probe and download,
    # each within canary_timeout_s, before it becomes current; `daily`: one worker checks the index each day.
    canary_urls: Annotated[list[str], NoDecode] = []
    canary_timeout_s: float = Field(default=120, gt=0)
    ytdlp_auto_update: Literal["off", "daily"] = "off"
    # The package index updates come from (a PEP 503 "simple" URL); empty: pip's own (PyPI, or PIP_INDEX_URL).
    ytdlp_index_url: str | None = None
    log_level: str = "INFO"

    # Web API
    # Accepted submissions (and retries) per key per minute.
    api_rate_per_minute: int = Field(default=60, ge=1)
    # Refused submissions (a bad body, a refused link) per key per minute, counted apart from accepted ones
    # so a typo does not use up the rate; past it, submissions are answered 429 until the minute has room.
    api_refusals_per_minute: int = Field(default=300, ge=1)
    # Every authenticated call (reads, cancels, WebSocket connects) per key per minute; submissions count
    # against api_rate_per_minute as well. Generous, but it stops a runaway poller.
    api_calls_per_minute: int = Field(default=1200, ge=1)
    api_max_concurrent: int = Field(default=10, ge=1)
    max_body_bytes: int = Field(default=8192, ge=256)
    # Completion webhooks (callback_url): HMAC key (empty: one generated into DATA_DIR/webhook.key; set it
    # when web processes do not share DATA_DIR), tries, first retry delay (doubling), per-try timeout, and
    # how often each web process looks for due webhooks besides being woken by job events.
    webhook_secret: str = ""
    # HMAC key API keys are hashed with (empty: one generated into DATA_DIR/apikey.key); every process that
    # checks or makes keys needs the same one, so set it when they do not share DATA_DIR.
    api_key_secret: str = ""
    webhook_max_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_s: float = Field(default=4, gt=0)
    webhook_timeout_s: float = Field(default=10, gt=0)
    webhook_poll_s: float = Field(default=5, gt=0)
    # Addresses (or CIDR networks) of reverse proxies whose X-Forwarded-* headers are believed.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Slow clients: a request's line and headers must arrive within request_header_timeout_s of its first
    # byte (or of the connection opening), its body within request_body_timeout_s of its headers; else 408
    # and the connection is closed. One client address holds at most max_connections_per_client
    # connections (behind a trusted proxy: requests in progress, counted by the forwarded address).
    request_header_timeout_s: float = Field(default=10, gt=0)
    request_body_timeout_s: float = Field(default=20, gt=0)
    max_connections_per_client: int = Field(default=100, ge=1)

    # Chat front ends
    telegram_token: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_upload_limit_mb: float | None = None
    # Send a file too large for Telegram as parts that each fit (when no smaller copy does).
    telegram_split: bool = False
    telegram_allowed_users: Annotated[list[str], NoDecode] = []
    telegram_webhook_url: str | None = None
    # Where the bot listens for webhook calls (behind the proxy that serves telegram_webhook_url).
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = Field(default=8443, ge=0, le=65535)
    # Inline mode (@bot LINK in any chat): Telegram edits an inline message only into a file it already holds,
    # so a new download is first uploaded to this chat (a private channel or group the bot may post in; its
    # numeric id, e.g. -1001234567890) for a file_id. Unset: inline answers only media already sent once.
    telegram_storage_chat: int | None = None
    # A format picker in a group is removed after this long unless chosen, so it does not stay in everyone's
    # view (its person can send the link again).
    telegram_group_picker_timeout_s: float = Field(default=120, gt=0)
    discord_token: str | None = None
    discord_api_url: str = "https://discord.com/api/v10"
    discord_guild_ids: Annotated[list[str], NoDecode] = []
    # Discord interaction tokens work for 15 minutes; after this long (a margin below that) the bot delivers
    # by a channel or DM message instead of editing its reply.
    discord_interaction_ttl_s: float = Field(default=14 * 60, gt=0, le=15 * 60)
    user_max_concurrent: int = Field(default=3, ge=1)
    user_requests_per_hour: int = Field(default=30, ge=1)

    @field_validator(
        "allowed_private_hosts",
        "allowed_extractors",
        "trusted_proxies",
        "telegram_allowed_users",
        "discord_guild_ids",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("allowed_private_hosts")
    @classmethod
    def _check_allowed_hosts(cls, value: list[str]) -> list[str]:
        # Refused at start-up rather than silently never matching: "http://nas:8000" would allow nothing.
        from core.net import host_port, parse_allowed_host

        return [host_port(*parse_allowed_host(entry)) for entry in value]

    @field_validator("canary_urls", mode="before")
    @classmethod
    def _canary_list(cls, value: object) -> object:
        links = _split_list(value)
        if isinstance(links, list) and any(
            not str(link).startswith(("http://", "https://")) for link in links
        ):
            raise ValueError("each canary link must be an http:// or https:// URL")
        return links

    @field_validator("site_limits")
    @classmethod
    def _check_site_limits(cls, value: str) -> str:
        from core.pacing.rules import parse_site_limits

        parse_site_limits(value)  # its one line names the variable and the bad entry
        return value.strip()

    @field_validator("proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        from core.pacing.rules import parse_proxies

        parse_proxies(value)  # never a password in its message
        return value.strip()

    @field_validator("ytdlp_index_url", mode="before")
    @classmethod
    def _no_index_url(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "cookies_dir", "s3_public_url", "s3_endpoint_url", "redis_url", "pot_provider_url",
        "telegram_storage_chat", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `MEDIABOT_COOKIES_DIR=` in a .env means "none", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _normalise_db(cls, value: str) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must be a postgresql:// or sqlite+aiosqlite:// URL")
        return value

    @field_validator("pot_provider_url")
    @classmethod
    def _check_pot_provider(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// URL such as http://pot-provider:4416")
        return value.strip().rstrip("/")

    @field_validator("js_runtime")
    @classmethod
    def _check_js_runtime(cls, value: str) -> str:
        return value.strip() or "auto"

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'mediabot.db'}"
        if self.storage is None:
            self.storage = "s3" if self.s3_bucket else "local"
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("MEDIABOT_STORAGE=s3 needs MEDIABOT_S3_BUCKET")
        if not self.public_url:
            host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
            self.public_url = f"http://{host}:{self.port}"
        self.public_url = self.public_url.rstrip("/")
        return self

    @property
    def telegram_upload_limit_bytes(self) -> int:
        """50 MB on the public Bot API; 2000 MB on a self-hosted one (MEDIABOT_TELEGRAM_API_URL set)."""
        if self.telegram_upload_limit_mb is not None:
            return int(self.telegram_upload_limit_mb * 1_000_000)
        public = self.telegram_api_url.rstrip("/") == "https://api.telegram.org"
        return (50 if public else 2000) * 1_000_000

    @property
    def max_filesize_bytes(self) -> int:
        return int(self.max_filesize_mb * 1_000_000)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def files_dir(self) -> Path:
        return self.data_dir / "files"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    def ensure_dirs(self) -> None:
        for path in (self.data_dir, self.files_dir, self.tmp_dir):
            path.mkdir(parents=True, exist_ok=True)

    def signing_key(self) -> bytes:
        """The HMAC key for local links: the setting, or a key generated once into DATA_DIR."""
        if self.secret_key:
            return self.secret_key.encode()
        return self._generated_key("secret.key")

    def webhook_key(self) -> bytes:
        """The HMAC key that signs webhook calls: the setting, or a key generated once into DATA_DIR."""
        if self.webhook_secret:
            return self.webhook_secret.encode()
        return self._generated_key("webhook.key")

    def api_key_hmac_key(self) -> bytes:
        """The HMAC key API keys are stored under: the setting, or a key generated once into DATA_DIR."""
        if self.api_key_secret:
            return self.api_key_secret.encode()
        return self._generated_key("apikey.key")

    def _generated_key(self, name: str) -> bytes:
        path = self.data_dir / name
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(32))
            tmp.chmod(0o600)
            try:
                # link() fails if another process won the race; then we read its key.
                path.hardlink_to(tmp)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode()


class SettingsError(Exception):
    """Invalid settings, described in one line that names the variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = "_".join(str(part) for part in err["loc"]) if err["loc"] else ""
            name = f"MEDIABOT_{field.upper()}" if field else "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            # The pacing parsers name the variable themselves (core.pacing.rules).
            problems.append(message if message.startswith(f"{name}:") else f"{name}: {message}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
