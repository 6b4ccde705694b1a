"""A download that ends while PostgreSQL is unreachable is recorded when it comes back, within the lease:
not downloaded a second time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from core.jobs.choices import SubmitRequest
from tests.faults.cluster import GatedMedia
from tests.support.servers import TcpProxy
from tests.support.services import make_settings, running_services, wait_until


async def test_the_final_write_waits_for_the_database(tmp_path: Path, pg_url: str, gated: GatedMedia) -> None:
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.port or 5432)
    await proxy.start()
    through_proxy = urlunsplit(
        parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}")
    )
    settings = make_settings(tmp_path, database_url=through_proxy, lease_s=20)
    try:
        async with running_services(settings) as services:
            url = gated.url("outage")
            sub = await services.jobs.submit(SubmitRequest(text=url, source="cli", user_id="u"))

            async def downloading() -> bool:
                view = await services.jobs.get_job(sub.job.id)
                return view.status == "running" and bool(view.progress.downloaded_bytes)

            await wait_until(downloading, timeout=30)
            await proxy.stop()  # the database is gone for everyone in this process
            gated.release("outage")
            await wait_until(lambda: gated.completed.get("outage") == 1, timeout=30)
            await asyncio.sleep(2)  # the worker's final write fails meanwhile, and is tried again
            await proxy.start()
            final = await services.jobs.wait(sub.job.id, timeout=30)
            assert final.status == "done", final.error
            assert final.attempts == 1, "recorded by the worker that downloaded it, not re-queued"
            assert gated.completed["outage"] == 1
            request, _ = await services.jobs.get_request(sub.request.id)
            assert request.status == "done"
    finally:
        await proxy.stop()
