"""The page for people without a bot: `/` and its static files, all from web/static, nothing remote."""

from __future__ import annotations

import asyncio
import functools
import re
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from core.config import Settings
from core.i18n import ENGLISH, accept_language, is_rtl, negotiate, supported, web_catalog
from web.keys import SERVICES
from web.openapi import Operation, Paths, Spec

routes = web.RouteTableDef()
paths = Paths()

# name -> content type; nothing else under /static is served.
ASSETS = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "words.js": "text/javascript",
    "rows.js": "text/javascript",
    # app.js's modules, by concern (app.js's opening comment says which holds what).
    "state.js": "text/javascript",
    "lists.js": "text/javascript",
    "messages.js": "text/javascript",
    "jobs.js": "text/javascript",
    "live.js": "text/javascript",
    "history.js": "text/javascript",
    "key.js": "text/javascript",
    "picker.js": "text/javascript",
    "actions.js": "text/javascript",
    "bulk.js": "text/javascript",
    "subscriptions.js": "text/javascript",
    "admin.js": "text/javascript",
    "i18n.js": "text/javascript",
    "app.css": "text/css",
}

# Scripts and styles only from this origin (no inline code), so text from the API can never run; the
# WebSockets and fetches go to this origin only. Pictures (job thumbnails) also come from where the files
# are stored. File links (local or S3) are plain navigations.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src {img}; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]{1,255}")


def _origin(url: str | None) -> str | None:
    """scheme://host[:port] of an address from the settings; None for anything that is not plain http(s)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    # Checked so a setting can never smuggle another directive (";") or source into the policy.
    return origin if _ORIGIN.fullmatch(origin) and "@" not in parts.netloc else None


def image_origins(settings: Settings) -> list[str]:
    """Where thumbnail links point: local links go to MEDIABOT_PUBLIC_URL (this origin, unless a proxy
    renames it); S3 links to its public URL, its endpoint, or AWS's path-style endpoint for the region."""
    if settings.storage == "s3":
        if settings.s3_public_url or settings.s3_endpoint_url:
            found = _origin(settings.s3_public_url or settings.s3_endpoint_url)
        elif settings.s3_region == "us-east-1":
            found = "https://s3.amazonaws.com"
        else:
            found = _origin(f"https://s3.{settings.s3_region}.amazonaws.com")
    else:
        found = _origin(settings.public_url)
    return [found] if found else []


@functools.cache
def _csp(origins: tuple[str, ...]) -> str:
    return PAGE_CSP.format(img=" ".join(["'self'", "data:", *origins]))


def headers(settings: Settings) -> dict[str, str]:
    return {
        "Cache-Control": "no-cache",
        "Content-Security-Policy": _csp(tuple(image_origins(settings))),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


@functools.cache
def _read(name: str) -> str:
    return resources.files("web").joinpath("static", name).read_text(encoding="utf-8")


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    settings = request.app[SERVICES].settings
    # The browser's language in the HTML itself, so a right-to-left page is laid out so before any script runs.
    locale = negotiate(*accept_language(request.headers.get("Accept-Language")))
    page = _read("index.html").replace(
        '<html lang="en">',
        f'<html lang="{locale.replace("_", "-")}" dir="{"rtl" if is_rtl(locale) else "ltr"}">',
        1,
    )
    return web.Response(
        text=page, content_type="text/html", headers={**headers(settings), "Vary": "Accept-Language"}
    )


@paths.operation("/", "get")
def _index_doc(spec: Spec) -> Operation:
    return {
        "summary": "The web page: paste a link, follow the download, save the file",
        "operationId": "page",
        "responses": {
            "200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}
        },
    }


@routes.get("/i18n/{locale}.json")
async def catalog(request: web.Request) -> web.Response:
    """The page's sentences in one language (from the bots' .po files); an unknown one gets English's (none)."""
    settings = request.app[SERVICES].settings
    wanted = request.match_info["locale"]
    found = await _catalog(supported(wanted) or ENGLISH)
    body = {**found, "fallback": supported(wanted) is None} if supported(wanted) is None else found
    return web.json_response(body, headers={**headers(settings), "Cache-Control": "max-age=300"})


_catalogs: dict[str, dict[str, Any]] = {}


async def _catalog(locale: str) -> dict[str, Any]:
    if locale not in _catalogs:
        # Reading a .po costs a few ms: off the event loop, once per process and language.
        _catalogs[locale] = await asyncio.to_thread(web_catalog, locale)
    return _catalogs[locale]


@paths.operation("/i18n/{locale}.json", "get")
def _catalog_doc(spec: Spec) -> Operation:
    return {
        "summary": "The web page's sentences in one language",
        "operationId": "pageCatalog",
        "parameters": [{"name": "locale", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {
            "200": {
                "description": "`{locale, dir, messages}`: translated sentences by their English text; an "
                "unknown locale gets English (`fallback: true`).",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }


@routes.get("/static/{name}")
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    settings = request.app[SERVICES].settings
    return web.Response(text=_read(name), content_type=ASSETS[name], headers=headers(settings))


@paths.operation("/static/{name}", "get")
def _asset_doc(spec: Spec) -> Operation:
    return {
        "summary": "The web page's script and style sheet",
        "operationId": "pageAsset",
        "parameters": [
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(ASSETS)},
            }
        ],
        "responses": {
            "200": {
                "description": "`app.js` or `app.css`.",
                "content": {
                    "text/javascript": {"schema": {"type": "string"}},
                    "text/css": {"schema": {"type": "string"}},
                },
            },
            **spec.errors(404),
        },
    }
