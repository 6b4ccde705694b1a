"""Every typed key the web app stores on the application or on a request, in one place.

A leaf of the web package: its value types are plain classes (web.state, web.telemetry, the core's) that
import no web module, so any web module can import the keys without an import loop, type-only ones included.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from core.apikeys import ApiKeyInfo
from core.bootstrap import Services
from core.webhooks.sender import WebhookSender
from web.state import ClientSlots, EventEncoder, JobOwners, Network, OpenSockets
from web.telemetry import WebMetrics

SERVICES = web.AppKey("services", Services)
METRICS = web.AppKey("metrics", WebMetrics)
OWNERS = web.AppKey("owners", JobOwners)
ENCODER = web.AppKey("encoder", EventEncoder)
# Open WebSockets by API key: closed with "going away" when the app shuts down, or when their key is revoked.
SOCKETS = web.AppKey("sockets", OpenSockets)
TRUSTED_PROXIES: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies")
# Connections (requests, through a trusted proxy) per client address: MEDIABOT_MAX_CONNECTIONS_PER_CLIENT.
CLIENT_SLOTS = web.AppKey("client_slots", ClientSlots)
# The OpenAPI document (web.openapi builds it from each route module's operations).
OPENAPI: web.AppKey[dict[str, Any]] = web.AppKey("openapi")
# Sends completion webhooks from this process (started and stopped by the app's cleanup context).
WEBHOOKS = web.AppKey("webhooks", WebhookSender)

# The API key that made the request (set once authenticated; the request log shows its name).
API_KEY = web.RequestKey("api_key", ApiKeyInfo)
