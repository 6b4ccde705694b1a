"""The OpenAPI 3.1 document, assembled from the operations each route module declares beside its handlers
(web.routes.*), with schemas generated from the pydantic models in web.schemas.

A route module holds `paths = Paths()` and, next to each handler, a function that writes its operation:

    @paths.operation("/api/v1/jobs/{id}", "get")
    def _get_job_doc(spec: Spec) -> Operation:
        return {"summary": "One job", ..., "responses": {"200": spec.json_body(Job, "The job."), ...}}

`Spec` holds what operations share: references to the models, the error answers, the security schemes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from core.jobs.formats import MediaFormats
from web.admin_schemas import AdminQueue, AdminStats, BanCreate, BanList, BanOut, LimitOut, LimitSet, Me
from web.schemas import (
    JOB_ID_PATTERN,
    ErrorResponse,
    Health,
    HealthDetailed,
    Job,
    JobCreate,
    JobEvent,
    JobList,
    SubscriptionCreate,
    SubscriptionList,
    SubscriptionOut,
)

Operation = dict[str, Any]
Build = Callable[["Spec"], Operation]

REF = "#/components/schemas/{model}"
# The models under components/schemas, in this order; an operation refers to them with `spec.ref`.
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (JobCreate, "validation"),
    (Job, "serialization"),
    (JobList, "serialization"),
    (JobEvent, "serialization"),
    (MediaFormats, "serialization"),
    (ErrorResponse, "serialization"),
    (Health, "serialization"),
    (HealthDetailed, "serialization"),
    (SubscriptionCreate, "validation"),
    (SubscriptionOut, "serialization"),
    (SubscriptionList, "serialization"),
    # The operator's (web.routes.admin).
    (AdminStats, "serialization"),
    (BanCreate, "validation"),
    (BanOut, "serialization"),
    (BanList, "serialization"),
    (LimitSet, "validation"),
    (LimitOut, "serialization"),
    (AdminQueue, "serialization"),
    (Me, "serialization"),
]
ERROR_TEXT = {
    400: "The request is malformed (bad JSON, unknown or invalid fields, bad query parameters or "
    "Idempotency-Key).",
    408: "The request's headers or body did not arrive in time (MEDIABOT_REQUEST_HEADER_TIMEOUT_S, "
    "MEDIABOT_REQUEST_BODY_TIMEOUT_S).",
    401: "No valid API key.",
    403: "The link's signature is not valid (link_invalid), or the operator banned this key (banned).",
    404: "Not found (or not yours).",
    405: "Method not allowed.",
    409: "The job has no file (yet) (not_ready), or is still queued or running (still_active).",
    410: "The link has expired.",
    413: "The request body is too large.",
    422: "The link or callback_url was refused (invalid_url, private_address, unsupported_url), the site "
    "would not hand out the link's formats (download_failed, login_required), or the Idempotency-Key was "
    "used for a different request (idempotency_conflict).",
    429: "Over the key's rate (rate_limited: accepted submissions, refused submissions, or calls), too many "
    "running downloads (too_many_jobs), or too many connections from your address (too_many_connections).",
    503: "A dependency (database, queue) is unavailable; try again shortly.",
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 1}}
}
DESCRIPTION = (
    "Download media from a link: submit a job, follow it live, fetch the file. "
    'Every error is `{"error": {"code", "message"}}`, including those of the HTTP layer: 408 '
    "`request_timeout` (headers or body too slow), 414 `uri_too_long`, 431 `headers_too_large`, 429 "
    "`too_many_connections` (per client address), 400 `invalid_request` (not valid HTTP)."
)
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer mb_..."},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "tokenQuery": {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "WebSockets only (browsers cannot set headers there).",
    },
}


class Spec:
    """What operations are written with: the models' references, error answers, security, the job id."""

    # Calls with an API key; WebSockets also take it as ?token= (browsers cannot set headers there).
    secured: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKeyHeader": []}]
    ws_secured: list[dict[str, list[str]]] = [*secured, {"tokenQuery": []}]
    job_id: dict[str, Any] = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The job id.",
        "schema": {"type": "string", "pattern": JOB_ID_PATTERN},
    }
    # Links: the id a response names leads to the operations on that job (stateful clients and fuzzers
    # follow them).
    job_links: dict[str, Any] = {
        name: {"operationId": operation, "parameters": {"id": "$response.body#/id"}}
        for name, operation in (
            ("GetJob", "getJob"),
            ("FollowJob", "jobEvents"),
            ("GetJobFile", "getJobFile"),
            ("RetryJob", "retryJob"),
            ("CancelJob", "cancelJob"),
            ("RemoveJob", "removeJob"),
        )
    }

    def __init__(self) -> None:
        self._refs, top = models_json_schema(_MODELS, ref_template=REF)
        self.schemas: dict[str, Any] = top.get("$defs", {})

    def ref(self, model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        return dict(self._refs[(model, mode)])

    def json_body(self, model: type[BaseModel], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": self.ref(model)}}}

    def errors(self, *statuses: int) -> dict[str, Any]:
        """The API's error answers for these statuses (429 with its Retry-After)."""
        out: dict[str, Any] = {}
        for status in statuses:
            out[str(status)] = self.json_body(ErrorResponse, ERROR_TEXT[status])
            if status == 429:
                out[str(status)]["headers"] = RETRY_AFTER
        return out


class Paths:
    """The operations one route module serves, in the order declared (the docs page lists them so)."""

    def __init__(self) -> None:
        self._parameters: dict[str, Callable[[Spec], list[dict[str, Any]]]] = {}
        self._operations: list[tuple[str, str, Build]] = []

    def parameters(self, path: str, build: Callable[[Spec], list[dict[str, Any]]]) -> None:
        """Parameters every operation on `path` takes (the path item's own `parameters`)."""
        self._parameters[path] = build

    def operation(self, path: str, method: str) -> Callable[[Build], Build]:
        """Declare `build(spec)` as the operation for `method` on `path`."""

        def declare(build: Build) -> Build:
            self._operations.append((path, method, build))
            return build

        return declare

    def add_to(self, doc_paths: dict[str, Any], spec: Spec) -> None:
        for path, method, build in self._operations:
            item = doc_paths.get(path)
            if item is None:
                item = doc_paths[path] = {}
                if path in self._parameters:
                    item["parameters"] = self._parameters[path](spec)
            item[method] = build(spec)


def build_openapi(version: str, declared: Iterable[Paths]) -> dict[str, Any]:
    """The whole document: the operations of each route module, in the order given."""
    spec = Spec()
    paths: dict[str, Any] = {}
    for module_paths in declared:
        module_paths.add_to(paths, spec)
    return {
        "openapi": "3.1.0",
        "info": {"title": "mediabot", "version": version, "description": DESCRIPTION},
        "paths": paths,
        "components": {"schemas": spec.schemas, "securitySchemes": SECURITY_SCHEMES},
    }
