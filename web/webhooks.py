"""Completion webhooks from the web processes: the core's sender, with the API's job JSON as the body.

Every web process runs a sender; the database decides which one makes each try (core.webhooks).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from core.services import Services
from core.webhooks import WebhookSender
from web.jobs import to_api
from web.keys import WEBHOOKS


def build_sender(services: Services) -> WebhookSender:
    async def render(request_id: str) -> bytes:
        # The same shape as GET /api/v1/jobs/{id}, rendered at each try (so file_url is fresh).
        request, job = await services.jobs.get_request(request_id)
        return (await to_api(services, request, job)).model_dump_json().encode()

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
