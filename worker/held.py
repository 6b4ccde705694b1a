"""A job this worker holds while it runs it."""

from __future__ import annotations

import asyncio
import time
import uuid

from core.db.models import Job
from core.media.control import Control


class Held:
    """A job this worker holds: its row (detached, updated in memory), the control shared with yt-dlp."""

    def __init__(self, job: Job, lease_s: float) -> None:
        self.job = job
        # When our lease runs out by our own clock (the one that wrote it): until then a final write that
        # fails because the database is away can be tried again, and nobody else will take the job.
        self.lease_deadline = time.monotonic() + lease_s
        self.control = Control()
        self.last_db_write = 0.0
        self.db_write: asyncio.Task[None] | None = None
        self.lost = False
        self.handback = False
        # This attempt's own folder in storage (see make_key).
        self.run_id = uuid.uuid4().hex[:12]
        # The site whose pacing slot this job holds ("": none).
        self.site = ""
        # Set when this attempt has cleaned up and left the worker's `running`.
        self.ended = asyncio.Event()
