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
from core.pacing.report import PacingReport, pacing_report
from core.stats import JobStats, job_stats

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 5.0


class _JobCollector(Collector):
    """Yields the figures of the last `job_stats` read (set just before each scrape renders)."""

    def __init__(self) -> None:
        self.stats: JobStats | None = None
        self.queue_depth: int | None = None
        self.pacing: PacingReport | None = None

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        if self.pacing is not None:
            yield from pacing_metrics(self.pacing)
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
        cuts = CounterMetricFamily(
            "mediabot_cuts",
            "Files made from a stored download: clip, animation, split (by chapters), sponsor (segments removed "
            "or marked).",
            labels=["kind"],
        )
        for kind in ("clip", "animation", "split", "sponsor"):
            cuts.add_metric([kind], stats.cuts.get(kind, 0))
        yield cuts
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


def pacing_metrics(report: PacingReport) -> Iterator[Metric]:
    """Per site and identity (cookies file @ redacted proxy; `""` is the whole site), and per limited site."""
    labels = ["site", "identity"]
    families = {
        "requests": CounterMetricFamily(
            "mediabot_site_requests", "Download attempts per site and identity.", labels=labels
        ),
        "successes": CounterMetricFamily(
            "mediabot_site_successes", "Successful downloads per site and identity.", labels=labels
        ),
        "rate_limits": CounterMetricFamily(
            "mediabot_site_rate_limits",
            "Refusals (rate limits and bot checks) per site and identity.",
            labels=labels,
        ),
    }
    resting = GaugeMetricFamily(
        "mediabot_site_resting_until_seconds",
        "Unix time until which an identity the site refused rests.",
        labels=labels,
    )
    for site in report.pool.sites:
        rows = [("", site.counts)] + [(i.identity, i.counts) for i in site.identities]
        for identity, counts in rows:
            families["requests"].add_metric([site.site, identity], counts.get("requests", 0))
            families["successes"].add_metric([site.site, identity], counts.get("successes", 0))
            refusals = counts.get("rate_limits", 0) + counts.get("bot_checks", 0)
            families["rate_limits"].add_metric([site.site, identity], refusals)
        for i in site.identities:
            if i.resting_until:
                resting.add_metric([site.site, i.identity], i.resting_until)
    yield from families.values()
    yield resting
    held = GaugeMetricFamily("mediabot_site_slots_held", "Downloads of a limited site now.", labels=["site"])
    waiting = GaugeMetricFamily(
        "mediabot_site_slots_waiting", "Jobs waiting for a slot of a limited site.", labels=["site"]
    )
    for slot in report.slots:
        held.add_metric([slot.site], slot.holders)
        waiting.add_metric([slot.site], slot.waiting)
    yield held
    yield waiting


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
            self._jobs.pacing = None
            if services.pacing is not None:
                try:
                    self._jobs.pacing = await asyncio.wait_for(pacing_report(services.pacing), timeout=2)
                except Exception as exc:  # noqa: BLE001 - Redis is down: leave the figures out
                    log.debug("pacing figures unavailable: %s", type(exc).__name__)
            return generate_latest(self.registry), ok
