"""Completion webhooks from the web processes: the core's sender, with the API's job JSON as the body.

Every web process runs a sender; the database decides which one makes each try (core.webhooks).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

from aiohttp import web

from core.bootstrap import Services
from core.webhooks.sender import WebhookSender
from web.keys import WEBHOOKS
from web.present import webhook_body


def build_sender(services: Services) -> WebhookSender:
    render = functools.partial(webhook_body, services)
    return WebhookSender(services.settings, services.sessions, services.bus, render)


async def sending(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the sender runs while the app does."""
    sender = app[WEBHOOKS]
    await sender.start()
    try:
        yield
    finally:
        await sender.close()


__all__ = ["build_sender", "sending"]
