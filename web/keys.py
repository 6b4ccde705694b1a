"""Every typed key the web app stores on the application or on a request, in one place."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from aiohttp import web

from core.apikeys import ApiKeyInfo
from core.services import Services
from core.webhooks import WebhookSender

if TYPE_CHECKING:
    from web.events import EventEncoder, JobOwners
    from web.metrics import WebMetrics
    from web.protocol import ClientSlots
    from web.sockets import OpenSockets

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SERVICES = web.AppKey("services", Services)
METRICS: web.AppKey[WebMetrics] = web.AppKey("metrics")
OWNERS: web.AppKey[JobOwners] = web.AppKey("owners")
ENCODER: web.AppKey[EventEncoder] = web.AppKey("encoder")
# Open WebSockets by API key: closed with "going away" when the app shuts down, or when their key is revoked.
SOCKETS: web.AppKey[OpenSockets] = web.AppKey("sockets")
TRUSTED_PROXIES: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies")
# Connections (requests, through a trusted proxy) per client address: MEDIABOT_MAX_CONNECTIONS_PER_CLIENT.
CLIENT_SLOTS: web.AppKey[ClientSlots] = web.AppKey("client_slots")
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
# Sends completion webhooks from this process (started and stopped by the app's cleanup context).
WEBHOOKS = web.AppKey("webhooks", WebhookSender)

# The API key that made the request (set once authenticated; the request log shows its name).
API_KEY = web.RequestKey("api_key", ApiKeyInfo)
