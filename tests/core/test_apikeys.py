"""API keys are stored as an HMAC under the install's own secret: a leaked digest is useless elsewhere, and
keys stored before that (plain SHA-256) keep working and are re-hashed on first use."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from core.apikeys import ApiKeyService, legacy_hash
from core.config import Settings, load_settings
from core.db.models import ApiKey, utcnow
from core.db.session import create_engine, session_factory


async def stored_digest(keys: ApiKeyService, name: str) -> str:
    async with keys.sessions() as session:
        digest = await session.scalar(select(ApiKey.key_hash).where(ApiKey.name == name))
    assert digest is not None
    return digest


def install(secret: bytes) -> Settings:
    return load_settings(api_key_secret=secret.hex())


async def test_keys_are_stored_under_the_installs_secret(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.apikeys")
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        here = ApiKeyService(sessions, install(os.urandom(16)), cache_s=0)
        elsewhere = ApiKeyService(sessions, install(os.urandom(16)), cache_s=0)
        info, key = await here.create("ci")
        digest = await stored_digest(here, "ci")
        assert digest.startswith("h1:") and len(digest) <= 64
        assert key not in digest and hashlib.sha256(key.encode()).hexdigest() != digest
        found = await here.verify(key)
        assert found is not None and found.id == info.id
        # The same table read with another secret (a copy of the database, a leaked digest): nothing matches,
        # and the log says what an operator who forgot to share the secret between processes should do.
        assert await elsewhere.verify(key) is None
        advice = [r.getMessage() for r in caplog.records if "MEDIABOT_API_KEY_SECRET" in r.getMessage()]
        assert len(advice) == 1 and "'ci'" in advice[0], advice
        assert await elsewhere.verify(key) is None
        assert len([r for r in caplog.records if "MEDIABOT_API_KEY_SECRET" in r.getMessage()]) == 1
    finally:
        await engine.dispose()


async def test_a_key_stored_as_plain_sha256_works_and_is_rehashed(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    secret = install(os.urandom(16))
    key = "mb_" + uuid.uuid4().hex + uuid.uuid4().hex
    try:
        async with sessions() as session, session.begin():
            session.add(
                ApiKey(
                    id=uuid.uuid4().hex,
                    name="old",
                    key_hash=legacy_hash(key),
                    prefix=key[:10],
                    created_at=utcnow(),
                )
            )
        keys = ApiKeyService(sessions, secret, cache_s=0)
        found = await keys.verify(key)
        assert found is not None and found.name == "old"
        digest = await stored_digest(keys, "old")
        assert digest.startswith("h1:") and digest != legacy_hash(key)
        # From then on it is found by its new digest, by this process and by any other sharing the secret.
        for verifier in (keys, ApiKeyService(sessions, secret, cache_s=0)):
            again = await verifier.verify(key)
            assert again is not None and again.id == found.id
        await keys.revoke("old")
        assert await keys.verify(key) is None
    finally:
        await engine.dispose()


def test_the_secret_is_generated_once_per_data_dir_unless_set(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path).api_key_hmac_key()
    assert first == load_settings(data_dir=tmp_path).api_key_hmac_key() and len(first) >= 32
    assert stat.S_IMODE((tmp_path / "apikey.key").stat().st_mode) & 0o077 == 0
    assert first != load_settings(data_dir=tmp_path).signing_key()
    assert (
        load_settings(data_dir=tmp_path, api_key_secret="set-by-operator").api_key_hmac_key()
        == b"set-by-operator"
    )
