"""API keys for the web API: created and revoked by name, stored only as a SHA-256 of the key."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import uuid
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
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

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
        log.info("API key %r revoked", name)
        return info

    async def verify(self, plaintext: str) -> ApiKeyInfo | None:
        """The active key matching `plaintext`, or None.

        The lookup is by SHA-256, so comparing against stored keys leaks nothing about them through
        timing; `last_used_at` is written at most once a minute per key.
        """
        if not plaintext or not _KEY_SHAPE.fullmatch(plaintext):
            return None
        digest = hash_key(plaintext)
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
        return _info(row)

    async def count_active(self) -> int:
        async with self.sessions() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
                )
                or 0
            )
