"""Calling the Bot API politely: waiting out flood control, and telling harmless errors from real ones."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from bots.progress import ChatPacer

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_FLOOD_WAIT_S = 120.0


def retry_seconds(exc: RetryAfter) -> float:
    """`RetryAfter.retry_after` is an int (deprecated) or a timedelta (PTB_TIMEDELTA=1): seconds either way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def not_modified(exc: TelegramError) -> bool:
    return isinstance(exc, BadRequest) and "not modified" in exc.message.lower()


def message_gone(exc: TelegramError) -> bool:
    text = exc.message.lower()
    return isinstance(exc, BadRequest) and (
        "not found" in text or "can't be edited" in text or "can't be deleted" in text
    )


def too_large(exc: TelegramError) -> bool:
    """The server refused an upload for its size: a 413 from its proxy, or the Bot API's own "too big"."""
    text = exc.message.lower()
    if isinstance(exc, NetworkError) and ("too large" in text or "(413)" in text):
        return True
    return isinstance(exc, BadRequest) and ("too big" in text or "too large" in text)


async def with_flood_retry(
    call: Callable[[], Awaitable[T]],
    *,
    chat: str,
    pacer: ChatPacer | None = None,
    attempts: int = 5,
) -> T:
    """Run `call` (a fresh request each time), waiting out 429s; other errors pass through.

    `call` must rebuild its request, uploads included, so a retry sends the whole file again.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            if pacer is not None:
                pacer.back_off(chat, wait)
            if attempt == attempts or wait > MAX_FLOOD_WAIT_S:
                raise
            log.info("telegram flood control in chat %s: waiting %.0f s (attempt %d)", chat, wait, attempt)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")
