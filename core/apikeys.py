"""API keys for the web API: created and revoked by name, stored only as an HMAC-SHA256 of the key under a
per-install secret (Settings.api_key_hmac_key), so a leaked table is of no use without that secret."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.models import ApiKey, utcnow
from core.errors import InvalidRequest, NotFound
from core.i18n import N_, _

log = logging.getLogger(__name__)

KEY_PREFIX = "mb_"
# "mb_" + token_urlsafe(32) is 46 characters; anything far from that is not one of ours.
_KEY_SHAPE = re.compile(r"mb_[A-Za-z0-9_-]{20,100}")
_NAME_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")
LAST_USED_EVERY = timedelta(minutes=1)
# A verified key is remembered this long in each process: it saves a database read on every API call, and
# bounds how long a key revoked from another process keeps working here.
VERIFY_CACHE_S = 5.0


@dataclass(frozen=True)
class ApiKeyInfo:
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    # May call the operator's endpoints (/api/v1/admin/...).
    is_admin: bool = False

    @property
    def active(self) -> bool:
        return self.revoked_at is None


# Stored digests: "h1:" + base64url(HMAC-SHA256(secret, key)) (46 characters). Keys made before the secret
# existed are stored as the plain SHA-256 in hex (64 characters); they still work, and are re-hashed on first use.
HASH_PREFIX = "h1:"


def hash_key(plaintext: str, secret: bytes) -> str:
    digest = hmac.new(secret, plaintext.encode(), hashlib.sha256).digest()
    return HASH_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def legacy_hash(plaintext: str) -> str:
    """How keys were stored before they were hashed with the install's secret."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _same(stored: str, digest: str) -> bool:
    return hmac.compare_digest(stored.encode(), digest.encode())


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        is_admin=bool(row.is_admin),
    )


class ApiKeyService:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, cache_s: float = VERIFY_CACHE_S
    ) -> None:
        self.sessions = sessions
        self._settings = settings
        # Read (or generated) at first use: a process that never sees a key leaves no secret file behind.
        self._secret: bytes | None = None
        self._warned: set[str] = set()
        self._cache_s = cache_s
        self._verified: dict[str, tuple[float, ApiKeyInfo]] = {}
        self._lookups: dict[str, asyncio.Task[ApiKeyInfo | None]] = {}
        # Keys revoked by this process, and when: a lookup that raced a revocation is not cached.
        self._revocations: dict[str, float] = {}

    async def create(self, name: str, *, admin: bool = False) -> tuple[ApiKeyInfo, str]:
        """A new key named `name` (an operator's when `admin`); the plaintext is returned once and never
        stored."""
        name = (name or "").strip()
        if not _NAME_SHAPE.fullmatch(name):
            raise InvalidRequest(
                N_(
                    "A key name is 1-100 characters: letters, digits and _ . @ -, starting with a letter or digit."
                )
            )
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id=uuid.uuid4().hex,
            name=name,
            key_hash=hash_key(plaintext, await self._hmac_key()),
            prefix=plaintext[:10],
            created_at=utcnow(),
            is_admin=admin,
        )
        try:
            async with self.sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise InvalidRequest(_("A key named '{name}' already exists.").format(name=name)) from None
        log.info("API key %r created (%s...)%s", name, row.prefix, " with admin rights" if admin else "")
        return _info(row), plaintext

    async def list(self) -> list[ApiKeyInfo]:
        async with self.sessions() as session:
            rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.name))
            return [_info(row) for row in rows]

    async def revoke(self, name: str) -> ApiKeyInfo:
        """Revoke the key named `name`; NotFound when there is no such active key."""
        async with self.sessions() as session, session.begin():
            row = await session.scalar(select(ApiKey).where(ApiKey.name == name).with_for_update())
            if row is None or row.revoked_at is not None:
                raise NotFound(_("No active key named '{name}'.").format(name=name))
            row.revoked_at = utcnow()
            info = _info(row)
        self._verified = {digest: hit for digest, hit in self._verified.items() if hit[1].id != info.id}
        self._revocations[info.id] = time.monotonic()
        log.info("API key %r revoked", name)
        return info

    async def verify(self, plaintext: str) -> ApiKeyInfo | None:
        """The active key matching `plaintext`, or None.

        The lookup is by HMAC digest, so comparing against stored keys leaks nothing about them through
        timing; a key still stored as a plain SHA-256 is found by that and re-hashed; `last_used_at` is
        written at most once a minute per key. A verified key is remembered for
        `cache_s` seconds (a revocation made by another process takes effect here within that time).
        """
        if not plaintext or not _KEY_SHAPE.fullmatch(plaintext):
            return None
        digest = hash_key(plaintext, await self._hmac_key())
        cached = self._verified.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # One database lookup per key at a time, however many requests arrive with it meanwhile.
        task = self._lookups.get(digest)
        if task is None:
            lookup = self._lookup(digest, legacy_hash(plaintext), plaintext[: len(KEY_PREFIX) + 7])
            task = self._lookups[digest] = asyncio.create_task(lookup)
            task.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(task)

    async def _lookup(self, digest: str, legacy: str, prefix: str) -> ApiKeyInfo | None:
        started = time.monotonic()
        async with self.sessions() as session:
            # The rows with the key's prefix come too (the same query): a key whose prefix matches but whose
            # digest does not was most likely hashed by a process with another secret.
            rows = list(
                await session.scalars(
                    select(ApiKey).where(or_(ApiKey.key_hash.in_((digest, legacy)), ApiKey.prefix == prefix))
                )
            )
        row = next((r for r in rows if _same(r.key_hash, digest) or _same(r.key_hash, legacy)), None)
        if row is None:
            self._warn_other_secret(rows)
            return None
        if row.revoked_at is not None:
            return None
        if row.key_hash == legacy:
            await self._rehash(row, legacy, digest)
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            cutoff = now - LAST_USED_EVERY
            try:
                async with self.sessions() as session, session.begin():
                    # Conditional, so many processes seeing the same key write it once.
                    await session.execute(
                        update(ApiKey)
                        .where(
                            ApiKey.id == row.id,
                            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < cutoff),
                        )
                        .values(last_used_at=now)
                    )
                row.last_used_at = now
            except Exception as exc:  # noqa: BLE001 - bookkeeping only; never refuse a valid key for it
                log.debug("last_used_at not updated: %s", exc)
        info = _info(row)
        if self._cache_s > 0 and info.id not in self._revoked_since(started):
            if len(self._verified) > 10_000:
                now_mono = time.monotonic()
                self._verified = {d: hit for d, hit in self._verified.items() if hit[0] > now_mono}
            self._verified[digest] = (started + self._cache_s, info)
        return info

    def _warn_other_secret(self, rows: list[ApiKey]) -> None:
        for row in rows:
            if row.revoked_at is None and row.key_hash.startswith(HASH_PREFIX) and row.id not in self._warned:
                self._warned.add(row.id)
                log.warning(
                    "API key %r was refused: what was sent has its prefix but not its stored digest. If the key "
                    "is right, it was made by a process with another secret: every process needs the same "
                    "MEDIABOT_API_KEY_SECRET (or a shared MEDIABOT_DATA_DIR)",
                    row.name,
                )

    async def _hmac_key(self) -> bytes:
        if self._secret is None:
            self._secret = await asyncio.to_thread(self._settings.api_key_hmac_key)
        return self._secret

    async def _rehash(self, row: ApiKey, legacy: str, digest: str) -> None:
        """A key stored before the install had its secret: store its HMAC instead (same column, no
        migration), so the plain SHA-256 no longer sits in the database."""
        try:
            async with self.sessions() as session, session.begin():
                # Conditional, so processes re-hashing the same key at once write it once.
                await session.execute(
                    update(ApiKey)
                    .where(ApiKey.id == row.id, ApiKey.key_hash == legacy)
                    .values(key_hash=digest)
                )
        except Exception as exc:  # noqa: BLE001 - the key works either way; tried again on its next use
            log.warning("API key %r not re-hashed: %s", row.name, type(exc).__name__)
            return
        log.info("API key %r re-hashed with this install's secret", row.name)

    def _revoked_since(self, started: float) -> set[str]:
        return {key_id for key_id, at in self._revocations.items() if at >= started}

    async def count_active(self) -> int:
        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
                )
                or 0
            )

    async def inactive(self, key_ids: Collection[str]) -> set[str]:
        """Which of `key_ids` can no longer be used (revoked or gone), in one query, never cached: open
        WebSockets are checked with it, so a revocation from any process closes them. Keys found revoked
        are forgotten by `verify` at once too (a client whose socket was closed cannot reconnect on the
        cached answer)."""
        if not key_ids:
            return set()
        started = time.monotonic()
        async with self.sessions() as session:
            active = set(
                await session.scalars(
                    select(ApiKey.id).where(ApiKey.id.in_(list(key_ids)), ApiKey.revoked_at.is_(None))
                )
            )
        gone = set(key_ids) - active
        if gone:
            self._verified = {digest: hit for digest, hit in self._verified.items() if hit[1].id not in gone}
            for key_id in gone:
                self._revocations.setdefault(key_id, started)
        return gone
