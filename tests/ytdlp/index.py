"""A package index on 127.0.0.1 (PEP 503 "simple" pages) serving the wheels of one folder, as PyPI or a
company mirror would, and counting what was asked."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from aiohttp import web


def _project(filename: str) -> str:
    # yt_dlp_ejs-0.8.0-py3-none-any.whl -> yt-dlp-ejs (PEP 503 normalised)
    return re.sub(r"[-_.]+", "-", filename.split("-", 1)[0]).lower()


class LocalIndex:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/simple/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/simple/{project}/", self._listing)
        app.router.add_get("/files/{name}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _listing(self, request: web.Request) -> web.Response:
        project = request.match_info["project"]
        self.hits[f"simple/{project}"] += 1
        links = [
            f'<a href="/files/{p.name}">{p.name}</a><br>'
            for p in sorted(self.folder.glob("*.whl"))
            if _project(p.name) == project
        ]
        if not links:
            return web.Response(status=404, text="no such project")
        body = "<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>"
        return web.Response(text=body, content_type="text/html")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self.folder / name
        if "/" in name or not path.is_file():
            return web.Response(status=404)
        self.hits[f"files/{name}"] += 1
        return web.FileResponse(path)
