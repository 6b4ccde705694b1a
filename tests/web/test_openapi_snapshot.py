"""The OpenAPI document, now assembled from the operations each route module declares, is the document the
app served before (openapi_snapshot.json: generated from main's web/openapi.py at a7aa0a2, before the move).

The only difference allowed is the list of the page's files under /static/{name}, which grows as app.js is
split into modules. After a deliberate change to the API, rewrite the snapshot with
`MEDIABOT_UPDATE_OPENAPI_SNAPSHOT=1 .venv/bin/pytest tests/web/test_openapi_snapshot.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from web.app import api_document

SNAPSHOT = Path(__file__).with_name("openapi_snapshot.json")
# The page's scripts split out of app.js (web/static): served beside it, so listed beside it.
PAGE_MODULES = [
    "state.js",
    "lists.js",
    "messages.js",
    "jobs.js",
    "live.js",
    "history.js",
    "key.js",
    "picker.js",
    "actions.js",
    "bulk.js",
    "subscriptions.js",
    "admin.js",
]


def _assets(doc: dict[str, Any]) -> list[str]:
    return doc["paths"]["/static/{name}"]["get"]["parameters"][0]["schema"]["enum"]


async def test_openapi_document_is_the_one_served_before_the_move(start_api: Any) -> None:
    built = api_document("0")
    if os.environ.get("MEDIABOT_UPDATE_OPENAPI_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(built, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))

    # As served, through JSON (so tuples and lists compare alike); only the version is the package's.
    async with start_api(worker=False) as api:
        status, served, _ = await api.call("GET", "/api/openapi.json")
    assert status == 200
    assert served["info"].pop("version")
    expected["info"].pop("version")
    # The page's files: those of the snapshot and the modules split out of app.js.
    assets, before = _assets(served), _assets(expected)
    assert sorted(assets) == sorted({*before, *PAGE_MODULES})
    before[:] = assets
    for path, item in expected["paths"].items():
        assert served["paths"].get(path) == item, f"{path} differs from the snapshot"
    assert served == expected
    assert json.loads(json.dumps(built))["paths"] == served["paths"]
