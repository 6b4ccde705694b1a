"""The app's Prometheus registry. HTTP figures are this process's own; job figures are read from the database
at scrape time, so every web process reports the same numbers for them. A plain class (web.keys names it):
it imports no other web module."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from core.bootstrap import Services
from core.db.models import JobStatus
from core.stats import JobStats, job_stats

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 5.0


class _JobCollector(Collector):
    """Yields the figures of the last `job_stats` read (set just before each scrape renders)."""

    def __init__(self) -> None:
        self.stats: JobStats | None = None
        self.queue_depth: int | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.queue_depth is not None:
            yield GaugeMetricFamily(
                "mediabot_queue_depth",
                "Messages waiting in (or taken from and not yet acknowledged by) the queue.",
                value=self.queue_depth,
            )
        stats = self.stats
        if stats is None:
            return
        jobs = GaugeMetricFamily("mediabot_jobs", "Jobs (downloads) by status.", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], stats.jobs_by_status.get(status.value, 0))
        yield jobs
        requests = CounterMetricFamily(
            "mediabot_requests",
            "Requests by outcome: queued (a new download), coalesced (joined a running one), cached (a stored file).",
            labels=["outcome"],
        )
        for outcome in ("queued", "coalesced", "cached"):
            requests.add_metric([outcome], stats.requests_by_outcome.get(outcome, 0))
        yield requests
        sources = CounterMetricFamily(
            "mediabot_requests_by_source", "Requests by front end.", labels=["source"]
        )
        for source, count in sorted(stats.requests_by_source.items()):
            sources.add_metric([source], count)
        yield sources
        yield CounterMetricFamily(
            "mediabot_downloaded_bytes",
            "Bytes of finished downloads (files reused from the cache excluded).",
            value=stats.downloaded_bytes,
        )
        yield CounterMetricFamily(
            "mediabot_jobs_reused",
            "Jobs finished from a stored file of the same media.",
            value=stats.reused_jobs,
        )
        buckets = [(f"{bound:g}", count) for bound, count in stats.duration_buckets]
        buckets.append(("+Inf", stats.duration_count))
        yield HistogramMetricFamily(
            "mediabot_job_duration_seconds",
            "Time from a worker claiming a job to its file being stored.",
            buckets=buckets,
            sum_value=stats.duration_sum,
        )
        yield GaugeMetricFamily(
            "mediabot_workers_alive", "Workers with a recent heartbeat.", value=stats.workers_alive
        )
        yield GaugeMetricFamily("mediabot_api_keys", "Active API keys.", value=stats.active_api_keys)


class _SubscriptionCollector(Collector):
    """Subscriptions' figures from the last read (core.subscriptions.service.counts)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        if counts is None:
            return
        subs = GaugeMetricFamily("mediabot_subscriptions", "Subscriptions by state.", labels=["state"])
        subs.add_metric(["active"], counts["subscriptions"])
        subs.add_metric(["paused"], counts["paused"])
        yield subs
        yield GaugeMetricFamily(
            "mediabot_subscriptions_failing",
            "Subscriptions whose last check failed (paused ones included).",
            value=counts["failing"],
        )
        yield CounterMetricFamily(
            "mediabot_subscription_checks",
            "Checks made of the current subscriptions' channels.",
            value=counts["checks"],
        )
        yield CounterMetricFamily(
            "mediabot_subscription_new_items",
            "New entries the current subscriptions made into requests.",
            value=counts["new_items"],
        )


class WebMetrics:
    """One registry per app (not prometheus-client's global one), so several apps can live in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.http_requests = Counter(
            "mediabot_http_requests",
            "HTTP requests handled.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "mediabot_http_request_duration_seconds",
            "Time to answer an HTTP request (WebSockets: connection time).",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self._jobs = _JobCollector()
        self.registry.register(self._jobs)
        self._subscriptions = _SubscriptionCollector()
        self.registry.register(self._subscriptions)
        self._lock = asyncio.Lock()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_latency.labels(method, route).observe(seconds)

    async def render(self, services: Services) -> tuple[bytes, bool]:
        """The exposition text, and whether the database figures are in it."""
        async with self._lock:  # one scrape at a time: the collector holds the figures being rendered
            ok = True
            try:
                self._jobs.stats = await asyncio.wait_for(
                    job_stats(services.sessions, services.settings.lease_s), timeout=SCRAPE_TIMEOUT_S
                )
            except Exception as exc:  # noqa: BLE001 - the database is down: HTTP figures only, and a 503
                log.warning("job metrics unavailable: %s", type(exc).__name__)
                self._jobs.stats = None
                ok = False
            try:
                self._subscriptions.counts = await asyncio.wait_for(
                    services.subscriptions.counts(), timeout=SCRAPE_TIMEOUT_S
                )
            except Exception as exc:  # noqa: BLE001 - the same outage as above: leave the figures out
                log.debug("subscription metrics unavailable: %s", type(exc).__name__)
                self._subscriptions.counts = None
            try:
                self._jobs.queue_depth = await asyncio.wait_for(services.queue.depth(), timeout=2)
            except Exception as exc:  # noqa: BLE001 - the broker is down: leave the figure out
                log.debug("queue depth unavailable: %s", type(exc).__name__)
                self._jobs.queue_depth = None
            return generate_latest(self.registry), ok
