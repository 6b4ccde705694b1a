"""Taskiq wiring: the brokers chosen from the settings, our tasks registered on them.

Two streams on Redis: jobs (acknowledged, no results kept) and probes (the front ends' questions about a
link, answered through a result backend; a stream of their own so a question never waits behind
downloads). In-process, one in-memory broker carries both.
"""

from __future__ import annotations

import logging

from taskiq import AsyncBroker, InMemoryBroker, TaskiqEvents, TaskiqState

from core.config import Settings
from worker.tasks import PROBE_TASK, SUPPORTED_TASK, TASK_NAME, close_prober, download, probe, supported

log = logging.getLogger(__name__)

STREAM = "mediabot:jobs"
GROUP = "mediabot-workers"
PROBE_STREAM = "mediabot:probes"
PROBE_GROUP = "mediabot-probers"
# How long an answer waits in Redis for the front end that asked (it polls for it within seconds).
PROBE_RESULT_TTL_S = 300


def make_brokers(settings: Settings) -> tuple[AsyncBroker, AsyncBroker]:
    """(jobs, probes): Redis streams (acknowledged, shared by every worker) when Redis is set, each its
    own stream; one in-process broker for both otherwise."""
    if not settings.redis_url:
        broker = InMemoryBroker(max_async_tasks=settings.worker_concurrency * 4, propagate_exceptions=False)
        broker.register_task(download, task_name=TASK_NAME)
        _answers_probes(broker, settings)
        return broker, broker
    # Only here: a process without Redis never imports its client (~7 MB).
    from taskiq_redis import RedisAsyncResultBackend

    from worker.redis_broker import stream_broker

    jobs = stream_broker(settings.redis_url, STREAM, GROUP, maxlen=100_000)
    jobs.register_task(download, task_name=TASK_NAME)
    probes = stream_broker(settings.redis_url, PROBE_STREAM, PROBE_GROUP, maxlen=10_000).with_result_backend(
        RedisAsyncResultBackend(
            settings.redis_url, result_ex_time=PROBE_RESULT_TTL_S, socket_connect_timeout=3, socket_timeout=5
        )
    )
    _answers_probes(probes, settings)
    return jobs, probes


def _answers_probes(broker: AsyncBroker, settings: Settings) -> None:
    broker.state.settings = settings
    broker.register_task(probe, task_name=PROBE_TASK)
    broker.register_task(supported, task_name=SUPPORTED_TASK)

    async def close(state: TaskiqState) -> None:
        close_prober(state)

    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, close)
    broker.add_event_handler(TaskiqEvents.CLIENT_SHUTDOWN, close)
