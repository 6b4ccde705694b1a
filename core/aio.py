"""Background tasks: `spawn` keeps a reference to each (the loop holds only a weak one, so an unreferenced task
can vanish mid-run) and logs its failure; `cancel_and_wait` stops one without hiding the caller's own cancel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
    """Run `coro` as a task that lives until it ends, whoever holds it; a failure is logged with its
    traceback (a cancel is not a failure)."""
    task = asyncio.create_task(coro, name=name)
    _running.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task %s failed", task.get_name(), exc_info=exc)


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended. Its own outcome is not raised here (spawn logs a failure);
    a cancel of the caller while waiting is."""
    task.cancel()
    await asyncio.wait([task])
