"""What a worker process adds on top of the core's services: the downloader, the runner and the reconciler."""

from __future__ import annotations

from core.bootstrap import Services
from core.media.downloader import Downloader
from worker.reconciler import Reconciler
from worker.runner import JobRunner
from worker.runtime import WorkerRuntime
from worker.subscriptions import SubscriptionScheduler


def build_worker(services: Services, worker_id: str | None = None) -> WorkerRuntime:
    """What a worker process adds on top: the downloader, the runner and the reconciler."""
    settings = services.settings
    downloader = Downloader(settings)
    runner = JobRunner(
        settings, services.sessions, services.bus, services.storage, downloader, services.queue, worker_id
    )
    reconciler = Reconciler(settings, services.sessions, services.bus, services.storage, services.queue)
    subscriptions = SubscriptionScheduler(services.subscriptions, downloader, services.bus, runner.worker_id)
    return WorkerRuntime(runner, reconciler, subscriptions)
