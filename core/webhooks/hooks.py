"""Completion webhooks: what a call says and how it is signed, and the checks a callback URL passes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import Webhook
from core.errors import InvalidUrl, PrivateAddress
from core.i18n import N_, _, ngettext
from core.net import AddressPolicy, check_url

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Mediabot-Signature"
TIMESTAMP_HEADER = "X-Mediabot-Timestamp"
DELIVERY_HEADER = "X-Mediabot-Delivery"
ATTEMPT_HEADER = "X-Mediabot-Attempt"
MAX_URL_LENGTH = 2048

# Renders a request's final state as the body to send (the web app's job JSON), given the request id.
Render = Callable[[str], Awaitable[bytes]]


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of `timestamp.body`."""
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def check_callback_url(url: str, policy: AddressPolicy) -> str:
    """A callback address under the rules for download links: http(s), and no private address unless
    the policy allows it. Returns the address to store."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidUrl(
            ngettext(
                "The callback_url must be one http(s) address of at most {n} character.",
                "The callback_url must be one http(s) address of at most {n} characters.",
                MAX_URL_LENGTH,
            ).format(n=MAX_URL_LENGTH)
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidUrl(N_("The callback_url must be an http:// or https:// address."))
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidUrl(N_("The callback_url has an invalid port.")) from None
    if not host:
        raise InvalidUrl(N_("The callback_url has no host name."))
    try:
        await asyncio.wait_for(check_url(url, policy), timeout=10)
    except TimeoutError:
        raise InvalidUrl(N_("The host of the callback_url could not be looked up.")) from None
    except PrivateAddress:
        raise PrivateAddress(
            N_("The callback_url points to a private network address, which is not allowed.")
        ) from None
    except InvalidUrl:
        raise InvalidUrl(
            _("The host of the callback_url ({host}) could not be found.").format(host=host)
        ) from None
    return url


@dataclass(frozen=True)
class WebhookView:
    request_id: str
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


async def get_webhook(sessions: async_sessionmaker[AsyncSession], request_id: str) -> WebhookView | None:
    """A request's webhook and how its delivery went, or None when it has none."""
    async with sessions() as session:
        row = await session.get(Webhook, request_id)
    if row is None:
        return None
    return WebhookView(
        request_id=row.request_id,
        url=row.url,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )
