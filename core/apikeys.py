"""API keys for the web API: created and revoked by name, stored only as a SHA-256 of the key."""

from __future__ import annotations

import asyncio
import hashlib
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

from core.errors import InvalidRequest, NotFound
from core.models import ApiKey, utcnow

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

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


class ApiKeyService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], cache_s: float = VERIFY_CACHE_S) -> None:
        self.sessions = sessions
        self._cache_s = cache_s
        self._verified: dict[str, tuple[float, ApiKeyInfo]] = {}
        self._lookups: dict[str, asyncio.Task[ApiKeyInfo | None]] = {}
        # Keys revoked by this process, and when: a lookup that raced a revocation is not cached.
        self._revocations: dict[str, float] = {}

    async def create(self, name: str) -> tuple[ApiKeyInfo, str]:
        """A new key named `name`; the plaintext is returned once and never stored."""
        name = (name or "").strip()
        if not _NAME_SHAPE.fullmatch(name):
            raise InvalidRequest(
                "A key name is 1-100 characters: letters, digits and _ . @ -, starting with a letter or digit."
            )
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(
            id=uuid.uuid4().hex,
            name=name,
            key_hash=hash_key(plaintext),
            prefix=plaintext[:10],
            created_at=utcnow(),
        )
        try:
            async with self.sessions() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise InvalidRequest(f"A key named {name!r} already exists.") from None
        log.info("API key %r created (%s...)", name, row.prefix)
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
                raise NotFound(f"No active key named {name!r}.")
            row.revoked_at = utcnow()
            info = _info(row)
        self._verified = {digest: hit for digest, hit in self._verified.items() if hit[1].id != info.id}
        self._revocations[info.id] = time.monotonic()
        log.info("API key %r revoked", name)
        return info

    async def verify(self, plaintext: str) -> ApiKeyInfo | None:
        """The active key matching `plaintext`, or None.

        The lookup is by SHA-256, so comparing against stored keys leaks nothing about them through
        timing; `last_used_at` is written at most once a minute per key. A verified key is remembered for
        `cache_s` seconds (a revocation made by another process takes effect here within that time).
        """
        if not plaintext or not _KEY_SHAPE.fullmatch(plaintext):
            return None
        digest = hash_key(plaintext)
        cached = self._verified.get(digest)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        # One database lookup per key at a time, however many requests arrive with it meanwhile.
        task = self._lookups.get(digest)
        if task is None:
            task = self._lookups[digest] = asyncio.create_task(self._lookup(digest))
            task.add_done_callback(lambda _: self._lookups.pop(digest, None))
        return await asyncio.shield(task)

    async def _lookup(self, digest: str) -> ApiKeyInfo | None:
        started = time.monotonic()
        async with self.sessions() as session:
            row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
        if row is None or row.revoked_at is not None:
            return None
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
