"""Errors only the web app raises, and the one table that turns error codes into HTTP statuses."""

from __future__ import annotations

import math

from aiohttp import web

from core.errors import MediabotError, RateLimited
from core.i18n import N_, _


class Unauthorized(MediabotError):
    code = "unauthorized"
    default_message = N_("A valid API key is required (Authorization: Bearer <key> or X-API-Key: <key>).")


class NotReady(MediabotError):
    code = "not_ready"
    default_message = N_("This job has no file (it has not finished, or it ended without one).")


class StillActive(MediabotError):
    code = "still_active"
    default_message = N_(
        "This download is still running: wait for it to end (or cancel it) before retrying it."
    )


class TooManyConnections(RateLimited):
    code = "too_many_connections"
    default_message = N_("Too many connections from your address.")


def too_many_connections(limit: int) -> str:
    return f"Too many connections from your address (at most {limit} at a time): close some, then try again."


class BodyTimeout(MediabotError):
    code = "request_timeout"
    default_message = N_("The request body did not arrive in time.")


STATUS_BY_CODE: dict[str, int] = {
    "invalid_request": 400,
    "unauthorized": 401,
    "link_invalid": 403,
    "banned": 403,
    "not_found": 404,
    "request_timeout": 408,
    "not_ready": 409,
    "still_active": 409,
    "cannot_ban": 409,  # yourself, or an operator (core.admin)
    # An expired link is Gone (the link, not necessarily the file): ask for the job's file again.
    "link_expired": 410,
    "body_too_large": 413,
    "invalid_url": 422,
    "unsupported_url": 422,
    "private_address": 422,
    "too_large": 422,
    "too_long": 422,
    "invalid_section": 422,
    "cut_refused": 422,
    "idempotency_conflict": 422,
    # Reading a link's formats: the site answered with an error, or wants a login first.
    "download_failed": 422,
    "login_required": 422,
    "rate_limited": 429,
    "too_many_jobs": 429,
    "too_many_connections": 429,
    "unavailable": 503,
    "storage_error": 503,
}

# aiohttp's own errors (and the HTTP parser's), in the API's words: never aiohttp's text, which echoes the
# request.
CODE_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("invalid_request", N_("The request is not valid.")),
    404: ("not_found", N_("There is nothing at this address.")),
    405: ("method_not_allowed", N_("This method is not allowed here.")),
    408: ("request_timeout", N_("The request did not arrive in time.")),
    413: ("body_too_large", N_("The request body is too large.")),
    414: ("uri_too_long", N_("The address is too long.")),
    417: ("invalid_request", N_("Only the Expect header 100-continue is understood.")),
    429: ("too_many_connections", N_("Too many connections from your address.")),
    431: ("headers_too_large", N_("The request's headers are too large.")),
    500: ("internal", N_("Something went wrong on our side. Please try again.")),
    504: ("timeout", N_("The request took too long on our side. Please try again.")),
}


def http_error(status: int) -> tuple[str, str]:
    """The code and message for an HTTP error status aiohttp produced."""
    if status in CODE_BY_STATUS:
        return CODE_BY_STATUS[status]
    return ("invalid_request", N_("The request is not valid.")) if status < 500 else CODE_BY_STATUS[500]


def status_for(exc: MediabotError) -> int:
    return STATUS_BY_CODE.get(exc.code, 500)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    # In the asker's language (the errors middleware set it from Accept-Language); English when unknown.
    return web.json_response({"error": {"code": code, "message": _(message)}}, status=status, headers=headers)


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
