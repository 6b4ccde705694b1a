"""At MEDIABOT_LOG_LEVEL=DEBUG the logs stay useful, yet never hold an API key, its stored digest or a cookie."""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.apikeys import legacy_hash
from core.db.models import ApiKey, utcnow
from core.logs import setup_logging
from tests.support.media_site import MediaSite
from tests.web.conftest import web_api, web_settings


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def debug_logging() -> Iterator[_Everything]:
    """Logging as `mediabot run` sets it up at DEBUG, and put back afterwards."""
    root = logging.getLogger()
    saved_levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    saved_root, saved_handlers = root.level, list(root.handlers)
    setup_logging("DEBUG")
    everything = _Everything()
    root.addHandler(everything)
    try:
        yield everything
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_root)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


async def test_debug_logs_hold_no_key_digest_or_cookie(
    tmp_path: Path, database_url: str, media_site: MediaSite, debug_logging: _Everything
) -> None:
    cookie_value = "c00kie-" + secrets.token_hex(12)
    cookies = tmp_path / "cookies"
    cookies.mkdir()
    jar = cookies / "127.0.0.1.txt"
    jar.write_text(
        "# Netscape HTTP Cookie File\n"
        "127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tok\n"
        f"127.0.0.1\tFALSE\t/\tFALSE\t0\tsecret_token\t{cookie_value}\n"
    )
    jar.chmod(0o600)
    settings = web_settings(tmp_path, database_url=database_url, cookies_dir=cookies, log_level="DEBUG")
    old_key = "mb_" + secrets.token_urlsafe(32)
    async with web_api(settings) as api:
        # A key stored the old way (plain SHA-256), as installs before per-install hashing have them.
        async with api.services.sessions() as session, session.begin():
            session.add(
                ApiKey(
                    id=uuid.uuid4().hex,
                    name="old",
                    key_hash=legacy_hash(old_key),
                    prefix=old_key[:10],
                    created_at=utcnow(),
                )
            )
        for key in (api.key, old_key):
            status, _, _ = await api.call("GET", "/api/v1/jobs", key=key)
            assert status == 200
        status, body = await api.submit(media_site.url(f"/cookie.mp4?n={uuid.uuid4().hex}"))
        assert status == 202, body
        done = await api.wait_status(body["id"], "done", "failed", timeout=60)
        assert done["status"] == "done", done
        async with api.services.sessions() as session:
            digests = list(await session.scalars(select(ApiKey.key_hash)))
    assert any(cookie_value in (c or "") for c in [r.cookie for r in media_site.requests])
    assert len(digests) == 2 and legacy_hash(old_key) not in digests

    secrets_seen = [api.key, old_key, legacy_hash(old_key), legacy_hash(api.key), cookie_value, *digests]
    leaks = [
        f"{r.name}: {r.getMessage()[:200]}"
        for r in debug_logging.records
        if any(s in r.getMessage() or s in (r.exc_text or "") for s in secrets_seen)
    ]
    assert not leaks, leaks
    # DEBUG still says what mediabot does (yt-dlp's progress lines, among others).
    assert any(r.levelno == logging.DEBUG and r.name.startswith("core.") for r in debug_logging.records)
