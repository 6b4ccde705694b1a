"""pytest fixtures for the local test media site.

Enabled by ``pytest_plugins = ["tests.support.media_fixtures"]`` in ``tests/conftest.py``.

* ``media_files`` (session, sync): :class:`~tests.support.media.MediaFiles`, generated once
  and cached on disk (``$MEDIABOT_TEST_MEDIA_DIR`` or ``/tmp/mediabot-test-media/v2``).
* ``media_site`` (session, async, session event loop): a started
  :class:`~tests.support.media_site.MediaSite` on 127.0.0.1. Counters are shared by the
  whole session: call ``media_site.reset_counts()`` or compare deltas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .media import MediaFiles, generate_media
from .media_site import MediaSite


@pytest.fixture(scope="session")
def media_files() -> MediaFiles:
    return generate_media()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def media_site(media_files: MediaFiles) -> AsyncIterator[MediaSite]:
    site = MediaSite(media_files)
    await site.start()
    try:
        yield site
    finally:
        await site.stop()
