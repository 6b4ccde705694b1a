"""Fuzz the running app from its own OpenAPI document with schemathesis: no 5xx, every response as
documented (status, content type, headers, body schema)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def fuzz(base: str, key: str, max_examples: int) -> tuple[list[str], int]:
    """Runs in a thread (schemathesis is synchronous); returns failures and the number of calls made."""
    schema = schemathesis.openapi.from_url(base + "/api/openapi.json")
    session = requests.Session()
    session.trust_env = False  # loopback only, never through a proxy
    failures: list[str] = []
    calls = [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz_operation(operation, mode, base, key, session, max_examples, failures, calls)
            except hypothesis.errors.Unsatisfiable:
                pass  # nothing to make invalid (an operation without parameters or body, in negative mode)
    return failures, calls[0]


def fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    base: str,
    key: str,
    session: requests.Session,
    max_examples: int,
    failures: list[str],
    calls: list[int],
) -> None:
    # /health/detailed answers a documented 503 here: no worker runs (so nothing is ever downloaded).
    checks = CHECKS[1:] if operation.label == "GET /health/detailed" else CHECKS

    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        headers = dict(case.headers or {})
        headers["Authorization"] = f"Bearer {key}"
        response = case.call(base_url=base, session=session, headers=headers, timeout=10)
        calls[0] += 1
        try:
            case.validate_response(response, checks=checks)
        except (AssertionError, BaseExceptionGroup) as exc:  # collect every failure, report them together
            failures.append(f"{operation.label} [{mode.value}] {response.status_code}: {str(exc)[:400]}")

    run()


@pytest.mark.timeout(120)
async def test_openapi_fuzz(start_api: Any) -> None:
    # No worker: fuzzed links are queued but nothing is ever fetched (no traffic leaves this machine).
    async with start_api(
        worker=False, api_rate_per_minute=100_000, api_calls_per_minute=100_000, api_max_concurrent=100_000
    ) as api:
        started = time.monotonic()
        failures, calls = await asyncio.to_thread(fuzz, api.base, api.key, MAX_EXAMPLES)
        assert not failures, "\n".join(failures[:20])
        assert calls > 100
        assert time.monotonic() - started < 90
