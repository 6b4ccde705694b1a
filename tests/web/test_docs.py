"""/api/openapi.json describes exactly the app's routes; /api/docs is a page that needs nothing from outside."""

from __future__ import annotations

import re
from typing import Any

from web.app import create_app


async def test_openapi_matches_routes_and_docs_page_is_self_contained(start_api: Any) -> None:
    async with start_api(worker=False) as api:
        status, doc, _ = await api.call("GET", "/api/openapi.json")
        assert status == 200 and doc["openapi"].startswith("3.1")
        create = doc["components"]["schemas"]["JobCreate"]
        assert create["additionalProperties"] is False and create["required"] == ["url"]
        assert "file_url" in doc["components"]["schemas"]["Job"]["properties"]

        documented = {
            (method.upper(), path)
            for path, item in doc["paths"].items()
            for method in item
            if method != "parameters"
        }
        app = create_app(api.services)
        routed = set()
        for route in app.router.routes():
            path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.resource.canonical)
            routed.add((route.method, path))
        # aiohttp adds HEAD to every GET route; only /files documents it.
        routed = {(m, p) for m, p in routed if m != "HEAD" or p.startswith("/files/")}
        assert documented == routed

        status, page, resp = await api.call("GET", "/api/docs")
        assert status == 200 and resp.content_type == "text/html"
        html = page.decode()
        assert "/api/openapi.json" in html
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), (
            "the docs page must not load anything remote"
        )
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
        # Text from the description is set as text (its `code` as <code> elements), never parsed as HTML;
        # the page follows the system's dark theme (checked in a browser in tests/browser/test_docs_page.py).
        assert "innerHTML" not in html and "insertAdjacentHTML" not in html
        assert "prefers-color-scheme: dark" in html
