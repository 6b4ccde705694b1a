"""The operator's API (issue 24 item 4): figures, bans, per-person quotas and the queue, for admin keys
(`mediabot apikey create NAME --admin`). Any other key gets the 404 an unknown address gets."""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from core.apikeys import ApiKeyInfo
from core.errors import InvalidRequest, NotFound
from web.admin_schemas import (
    USER_ID_PATTERN,
    AdminPeriod,
    AdminQueue,
    AdminStats,
    BanCreate,
    BanList,
    BanOut,
    LimitOut,
    LimitSet,
    Me,
)
from web.auth import SOURCE, authenticate, refusals_limited
from web.bodies import json_object
from web.errors import CODE_BY_STATUS
from web.keys import SERVICES
from web.openapi import Operation, Paths, Spec
from web.routes.jobs import _describe
from web.schemas import ErrorResponse

M = TypeVar("M", bound=BaseModel)
routes = web.RouteTableDef()
paths = Paths()

ADMIN_ONLY = "Admin keys only (`mediabot apikey create NAME --admin`); any other key gets 404."


async def operator(request: web.Request) -> ApiKeyInfo:
    """The calling admin key; 404 for any other key, as if the address did not exist."""
    key = await authenticate(request)
    if not key.is_admin:
        raise NotFound(CODE_BY_STATUS[404][1])
    return key


def _body(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate(json_object(raw))
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    key = await authenticate(request)
    return web.json_response(Me(name=key.name, admin=key.is_admin).model_dump(mode="json"))


@paths.operation("/api/v1/me", "get")
def _me_doc(spec: Spec) -> Operation:
    return {
        "summary": "The calling key",
        "description": "Its name, and whether it is an admin key.",
        "operationId": "getMe",
        "security": spec.secured,
        "responses": {"200": spec.json_body(Me, "The key."), **spec.errors(401, 429, 503)},
    }


@routes.get("/api/v1/admin/stats")
async def admin_stats(request: web.Request) -> web.Response:
    await operator(request)
    periods = await request.app[SERVICES].admin.stats()
    body = AdminStats(periods=[AdminPeriod.model_validate(p.to_dict()) for p in periods])
    return web.json_response(body.model_dump(mode="json"))


@paths.operation("/api/v1/admin/stats", "get")
def _stats_doc(spec: Spec) -> Operation:
    return {
        "summary": "Figures for the operator",
        "description": "Today (since midnight UTC) and the last 7 days: asks, downloads, cache hits, bytes, "
        "failures by error code, the top sites and the busiest people, across every front end. " + ADMIN_ONLY,
        "operationId": "adminStats",
        "security": spec.secured,
        "responses": {"200": spec.json_body(AdminStats, "The figures."), **spec.errors(401, 404, 429, 503)},
    }


@routes.get("/api/v1/admin/bans")
async def list_bans(request: web.Request) -> web.Response:
    await operator(request)
    bans = await request.app[SERVICES].admin.bans()
    body = BanList(items=[BanOut.model_validate(b.to_dict()) for b in bans])
    return web.json_response(body.model_dump(mode="json"))


@paths.operation("/api/v1/admin/bans", "get")
def _bans_doc(spec: Spec) -> Operation:
    return {
        "summary": "Everyone banned",
        "description": ADMIN_ONLY,
        "operationId": "listBans",
        "security": spec.secured,
        "responses": {"200": spec.json_body(BanList, "The bans."), **spec.errors(401, 404, 429, 503)},
    }


@routes.post("/api/v1/admin/bans")
async def create_ban(request: web.Request) -> web.Response:
    key = await operator(request)
    async with refusals_limited(request, key):
        body = _body(BanCreate, await request.read())
        ban = await request.app[SERVICES].admin.ban(
            body.source, body.user_id, reason=body.reason, by=f"{SOURCE}:{key.name}", by_user=(SOURCE, key.id)
        )
    return web.json_response(BanOut.model_validate(ban.to_dict()).model_dump(mode="json"), status=201)


@paths.operation("/api/v1/admin/bans", "post")
def _ban_doc(spec: Spec) -> Operation:
    return {
        "summary": "Ban someone",
        "description": "From then on every process refuses that person's asks (`banned`, 403, or one sentence "
        "in a chat, with the reason when given); nothing is downloaded for them. Banning again replaces the "
        "reason. 404 for an id that never used the service. " + ADMIN_ONLY,
        "operationId": "createBan",
        "security": spec.secured,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": spec.ref(BanCreate, "validation")}},
        },
        "responses": {
            "201": spec.json_body(BanOut, "Banned."),
            **spec.errors(400, 401, 404, 413, 429, 503),
            "409": spec.json_body(
                ErrorResponse, "Yourself (this key) or an operator cannot be banned (cannot_ban)."
            ),
        },
    }


def _ban_parameters(spec: Spec) -> list[dict[str, object]]:
    return [
        {
            "name": "source",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "enum": ["telegram", "discord", "api"]},
        },
        {
            "name": "user_id",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": USER_ID_PATTERN},
        },
    ]


paths.parameters("/api/v1/admin/bans/{source}/{user_id}", _ban_parameters)


@routes.delete("/api/v1/admin/bans/{source}/{user_id}")
async def delete_ban(request: web.Request) -> web.Response:
    key = await operator(request)
    source, user_id = request.match_info["source"], request.match_info["user_id"]
    try:
        await request.app[SERVICES].admin.unban(source, user_id, by=f"{SOURCE}:{key.name}")
    except InvalidRequest:
        raise NotFound(CODE_BY_STATUS[404][1]) from None
    return web.Response(status=204)


@paths.operation("/api/v1/admin/bans/{source}/{user_id}", "delete")
def _unban_doc(spec: Spec) -> Operation:
    return {
        "summary": "Lift a ban",
        "description": "404 when that person is not banned. " + ADMIN_ONLY,
        "operationId": "deleteBan",
        "security": spec.secured,
        "responses": {"204": {"description": "Lifted."}, **spec.errors(401, 404, 429, 503)},
    }


@routes.put("/api/v1/admin/limits")
async def set_limit(request: web.Request) -> web.Response:
    key = await operator(request)
    async with refusals_limited(request, key):
        body = _body(LimitSet, await request.read())
        quota = await request.app[SERVICES].admin.set_quota(
            body.source, body.user_id, body.requests_per_hour, by=f"{SOURCE}:{key.name}"
        )
    out = LimitOut(
        source=body.source, user_id=body.user_id, requests_per_hour=quota.requests_per_hour,
        overridden=quota.overridden,
    )  # fmt: skip
    return web.json_response(out.model_dump(mode="json"))


@paths.operation("/api/v1/admin/limits", "put")
def _limit_doc(spec: Spec) -> Operation:
    return {
        "summary": "Set one person's downloads per hour",
        "description": "Replaces MEDIABOT_USER_REQUESTS_PER_HOUR for that chat user (Telegram, Discord) in "
        "every process; null goes back to the default. 404 for an id that never used the service. "
        + ADMIN_ONLY,
        "operationId": "setLimit",
        "security": spec.secured,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": spec.ref(LimitSet, "validation")}},
        },
        "responses": {
            "200": spec.json_body(LimitOut, "The person's limit now."),
            **spec.errors(400, 401, 404, 413, 429, 503),
        },
    }


@routes.get("/api/v1/admin/queue")
async def admin_queue(request: web.Request) -> web.Response:
    await operator(request)
    view = await request.app[SERVICES].admin.queue()
    return web.json_response(AdminQueue.model_validate(view.to_dict()).model_dump(mode="json"))


@paths.operation("/api/v1/admin/queue", "get")
def _queue_doc(spec: Spec) -> Operation:
    return {
        "summary": "What runs and waits",
        "description": "Every worker's jobs, by site, and the oldest 50. " + ADMIN_ONLY,
        "operationId": "adminQueue",
        "security": spec.secured,
        "responses": {"200": spec.json_body(AdminQueue, "The queue."), **spec.errors(401, 404, 429, 503)},
    }
