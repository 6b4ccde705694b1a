"""A fake SponsorBlock API on 127.0.0.1: `GET /api/skipSegments?videoID=&categories=&actionTypes=&service=`
answered as the real one does (wiki.sponsor.ajay.app/w/API_Docs): 200 with the video's segments in the asked
categories and action types, 404 when there are none. Every query is recorded.

Segments are added per (service, video id); `misbehave(video_id, ...)` makes one video's answer slow, not
JSON, or a given status, so a client's handling of each can be tested against a real socket.

    async with FakeSponsorBlock() as api:
        api.add("Generic", "abc", [(6.0, 8.0, "sponsor")], video_duration=16.0)
        ... MEDIABOT_SPONSORBLOCK_URL = api.url ...
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Query:
    video_id: str | None
    service: str | None
    categories: list[str] | None
    action_types: list[str] | None
    raw: dict[str, str] = field(default_factory=dict)


@dataclass
class _Misbehaviour:
    delay_s: float = 0.0
    status: int | None = None
    body: bytes | None = None


class FakeSponsorBlock:
    def __init__(self) -> None:
        self.queries: list[Query] = []
        self._segments: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._misbehaviour: dict[str, _Misbehaviour] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(
        self,
        service: str,
        video_id: str,
        segments: list[tuple[float, float, str]],
        *,
        video_duration: float = 0.0,
        action_type: str = "skip",
    ) -> None:
        """Segments (start, end, category) the API knows for `video_id` on `service`."""
        self._segments.setdefault((service, video_id), []).extend(
            {
                "segment": [start, end],
                "UUID": uuid.uuid4().hex,
                "category": category,
                "videoDuration": video_duration,
                "actionType": action_type,
                "locked": 0,
                "votes": 3,
                "description": "",
            }
            for start, end, category in segments
        )

    def misbehave(
        self, video_id: str, *, delay_s: float = 0.0, status: int | None = None, body: bytes | None = None
    ) -> None:
        self._misbehaviour[video_id] = _Misbehaviour(delay_s=delay_s, status=status, body=body)

    async def start(self) -> FakeSponsorBlock:
        app = web.Application()
        app.router.add_get("/api/skipSegments", self._skip_segments)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSponsorBlock:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _skip_segments(self, request: web.Request) -> web.Response:
        q = request.query
        video_id = q.get("videoID")
        service = q.get("service", "YouTube")
        categories = (
            _json_list(q.get("categories")) if "categories" in q else q.getall("category", ["sponsor"])
        )
        action_types = (
            _json_list(q.get("actionTypes")) if "actionTypes" in q else q.getall("actionType", ["skip"])
        )
        self.queries.append(Query(video_id, service, categories, action_types, dict(q)))
        bad = self._misbehaviour.get(video_id or "")
        if bad is not None:
            if bad.delay_s:
                await asyncio.sleep(bad.delay_s)
            if bad.status is not None or bad.body is not None:
                return web.Response(
                    status=bad.status or 200, body=bad.body or b"", content_type="application/json"
                )
        if not video_id or categories is None or action_types is None:
            return web.Response(status=400, text="Bad Request")
        found = [
            s for s in self._segments.get((service, video_id), [])
            if s["category"] in categories and s["actionType"] in action_types
        ]  # fmt: skip
        if not found:
            return web.Response(status=404, text="Not Found")
        return web.json_response(found)


def _json_list(text: str | None) -> list[str] | None:
    try:
        value = json.loads(text or "")
    except ValueError:
        return None
    return [str(v) for v in value] if isinstance(value, list) else None
