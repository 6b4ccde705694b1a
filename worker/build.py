"""What a worker process adds on top of the core's services: the downloader, the runner and the reconciler."""

from __future__ import annotations

from core.bootstrap import Services
from core.cuts.sponsorblock import SponsorBlockClient
from core.media.lazy_downloader import LazyDownloader
from worker.reconciler import Reconciler
from worker.runner import JobRunner
from worker.runtime import WorkerRuntime
from worker.subscriptions import SubscriptionScheduler


def build_worker(services: Services, worker_id: str | None = None, *, warm: bool = True) -> WorkerRuntime:
    """What a worker process adds on top: the downloader, the runner and the reconciler."""
    settings = services.settings
    # yt-dlp is imported on the first job, or by WorkerRuntime.start when the process warms up.
    downloader = LazyDownloader(settings)
    # One client (one aiohttp session) per worker process, closed when the worker stops.
    sponsorblock = SponsorBlockClient(settings.sponsorblock_url)
    runner = JobRunner(
        settings,
        services.sessions,
        services.bus,
        services.storage,
        downloader,
        services.queue,
        worker_id,
        pacing=services.pacing,
        sponsorblock=sponsorblock,
    )
    reconciler = Reconciler(settings, services.sessions, services.bus, services.storage, services.queue)
    subscriptions = SubscriptionScheduler(
        services.subscriptions, downloader, services.bus, runner.worker_id, pacing=services.pacing
    )
    return WorkerRuntime(runner, reconciler, subscriptions, warm=warm)
