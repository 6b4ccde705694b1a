"""Background tasks that are neither lost nor silent: `spawn` keeps a reference to each task until it ends
(the event loop keeps only a weak one) and logs its failure; `cancel_and_wait` stops one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
    """Run `coro` as a task of its own, kept alive until it ends; a failure is logged with its traceback."""
    task = asyncio.create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(_ended)
    return task


def _ended(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("task %s failed", task.get_name(), exc_info=exc)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` and wait until it has ended (its own failure, if any, is `spawn`'s to log)."""
    if task is None or task.done():
        return
    task.cancel()
    # wait(), not `await task`: a cancel of the caller still reaches the caller, and the task's own end
    # (cancelled, or failed while stopping) is not raised here.
    await asyncio.wait({task})
