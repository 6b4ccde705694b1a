"""Subscriptions: follow a channel or playlist (each new entry becomes a job of the key), list them, stop one."""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import ValidationError

from core.errors import InvalidRequest, NotFound
from core.i18n import N_
from core.subscriptions.service import SubscribeRequest, SubscriptionView
from web.auth import SOURCE, authenticate, refusals_limited
from web.bodies import json_object
from web.keys import SERVICES
from web.openapi import Operation, Paths, Spec
from web.routes.jobs import _describe
from web.schemas import JOB_ID_PATTERN, SubscriptionCreate, SubscriptionList, SubscriptionOut

routes = web.RouteTableDef()
paths = Paths()

_ID = re.compile(JOB_ID_PATTERN)


def present(view: SubscriptionView) -> SubscriptionOut:
    return SubscriptionOut(
        id=view.id, url=view.url, kind=view.kind, quality=view.quality, title=view.title,  # type: ignore[arg-type]
        callback_url=view.callback_url, paused=view.paused, failures=view.failures, last_error=view.last_error,
        checks=view.checks, delivered=view.delivered, created_at=view.created_at, checked_at=view.checked_at,
        next_check_at=view.next_check_at,
    )  # fmt: skip


@routes.post("/api/v1/subscriptions")
async def create_subscription(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    async with refusals_limited(request, key):
        data = json_object(await request.read())
        try:
            body = SubscriptionCreate.model_validate(data)
        except ValidationError as exc:
            raise InvalidRequest(_describe(exc)) from None
        view, created = await services.subscriptions.subscribe(
            SubscribeRequest(
                text=body.url, source=SOURCE, user_id=key.id, place=f"api:{key.id}", kind=body.kind,
                quality=body.quality, callback_url=body.callback_url, backfill=body.backfill,
            )
        )  # fmt: skip
    headers = {"Location": f"/api/v1/subscriptions/{view.id}"}
    return web.json_response(
        present(view).model_dump(mode="json"), status=201 if created else 200, headers=headers
    )


@paths.operation("/api/v1/subscriptions", "post")
def _create_doc(spec: Spec) -> Operation:
    return {
        "summary": "Follow a channel or playlist",
        "description": "A worker checks it every MEDIABOT_SUBSCRIPTION_INTERVAL_S; each entry that appeared "
        "since the last check becomes a job of this key (one download however many follow the channel), "
        "announced on the key's WebSocket and POSTed to `callback_url` when given. Subscribing never "
        "downloads the back catalogue unless `backfill` asks for the newest few. A channel that cannot be "
        "read several times in a row is paused (`paused: true`, `last_error`); subscribing again resumes "
        "it. 201 when new, 200 with the existing subscription for the same link, kind and quality.",
        "operationId": "createSubscription",
        "security": spec.secured,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": spec.ref(SubscriptionCreate, "validation")}},
        },
        "responses": {
            "201": spec.json_body(SubscriptionOut, "Subscribed."),
            "200": spec.json_body(SubscriptionOut, "Already subscribed (resumed if it was paused)."),
            **spec.errors(400, 401, 403, 413, 422, 429, 503),
        },
    }


@routes.get("/api/v1/subscriptions")
async def list_subscriptions(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    views = await services.subscriptions.list(source=SOURCE, user_id=key.id)
    return web.json_response(SubscriptionList(items=[present(v) for v in views]).model_dump(mode="json"))


@paths.operation("/api/v1/subscriptions", "get")
def _list_doc(spec: Spec) -> Operation:
    return {
        "summary": "Your subscriptions",
        "operationId": "listSubscriptions",
        "security": spec.secured,
        "responses": {
            "200": spec.json_body(SubscriptionList, "Your subscriptions."),
            **spec.errors(401, 429, 503),
        },
    }


def _sub_id(spec: Spec) -> list[dict[str, object]]:
    return [
        {
            "name": "id",
            "in": "path",
            "required": True,
            "description": "The subscription id.",
            "schema": {"type": "string", "pattern": JOB_ID_PATTERN},
        }
    ]


paths.parameters("/api/v1/subscriptions/{id}", _sub_id)


@routes.get("/api/v1/subscriptions/{id}")
async def get_subscription(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    sub_id = request.match_info["id"]
    if not _ID.fullmatch(sub_id):
        raise NotFound(N_("No such subscription."))
    view = await services.subscriptions.get(sub_id, source=SOURCE, user_id=key.id)
    return web.json_response(present(view).model_dump(mode="json"))


@paths.operation("/api/v1/subscriptions/{id}", "get")
def _get_doc(spec: Spec) -> Operation:
    return {
        "summary": "One subscription",
        "operationId": "getSubscription",
        "security": spec.secured,
        "responses": {
            "200": spec.json_body(SubscriptionOut, "The subscription."),
            **spec.errors(401, 404, 429, 503),
        },
    }


@routes.delete("/api/v1/subscriptions/{id}")
async def delete_subscription(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    sub_id = request.match_info["id"]
    if not _ID.fullmatch(sub_id):
        raise NotFound(N_("No such subscription."))
    view = await services.subscriptions.unsubscribe(sub_id, source=SOURCE, user_id=key.id)
    return web.json_response(present(view).model_dump(mode="json"))


@paths.operation("/api/v1/subscriptions/{id}", "delete")
def _delete_doc(spec: Spec) -> Operation:
    return {
        "summary": "Stop a subscription",
        "description": "No new entries are made into jobs; jobs already made go on.",
        "operationId": "deleteSubscription",
        "security": spec.secured,
        "responses": {
            "200": spec.json_body(SubscriptionOut, "The subscription as it was."),
            **spec.errors(401, 404, 429, 503),
        },
    }
