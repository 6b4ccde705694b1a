"""Fuzz the running app from its own OpenAPI document with schemathesis, as `schemathesis run --checks all`
does: examples, coverage, fuzzing (valid and invalid data) and stateful sequences over the document's links,
every check on every response. The document must be exact: what it allows is accepted, what it forbids is
refused, every answer is documented.

Also runnable by hand for a longer run (prints schemathesis's summary line):
    .venv/bin/python -m tests.web.test_fuzz 300
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.engine import events, from_schema

from tests.web.conftest import Api

MAX_EXAMPLES = 12
# Limits out of the way: the fuzzer is one client sending thousands of requests.
SETTINGS: dict[str, Any] = dict(
    worker=False,  # links are queued, never fetched: nothing leaves this machine
    api_rate_per_minute=1_000_000,
    api_refusals_per_minute=1_000_000,
    api_calls_per_minute=1_000_000,
    api_max_concurrent=1_000_000,
    max_connections_per_client=100_000,
)
# The links the fuzzer makes up point at a closed port here: no request ever goes to a real host.
LOCAL = "127.0.0.1:9"
_HOST = re.compile(r"(?i)^( *https?://)[^/?#]*")
# Operations that read the link they are given: a link the document allows can still be refused once
# read (422: unreachable, unsupported, private, too long...), which no document can rule out; POST
# /api/v1/jobs also answers 422 to an Idempotency-Key reused with another body, as documented.
READS_A_LINK = [
    "POST /api/v1/jobs",
    "GET /api/v1/formats",
    "POST /api/v1/jobs/{id}/retry",
    "POST /api/v1/subscriptions",
]
WEBSOCKETS = ["GET /api/v1/events", "GET /api/v1/jobs/{id}/events"]
DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def _local(value: Any) -> Any:
    return _HOST.sub(lambda m: m.group(1) + LOCAL, value) if isinstance(value, str) else value


def _hang_up_upgraded(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """requests does not speak WebSocket: after a 101 it would send its next request down the upgraded
    connection. Hang that connection up (the handshake's answer is all this run looks at)."""
    if response.status_code == 101:
        response._content = b""
        response.raw.close()
    return response


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    """Every made-up link points here (schemathesis runs this hook only in this module's runs); a WebSocket
    handshake gets a connection of its own (requests would reuse the upgraded one for the next call)."""
    if case.operation.path.endswith("/events"):
        kwargs["hooks"] = {"response": [_hang_up_upgraded]}
    if isinstance(case.query, dict) and "url" in case.query:
        case.query["url"] = _local(case.query["url"])
    if isinstance(case.body, dict):
        for name in ("url", "callback_url"):
            if name in case.body:
                case.body[name] = _local(case.body[name])


def config(key: str, max_examples: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "headers": {"Authorization": f"Bearer {key}"},
            "seed": 20,
            "generation": {"max-examples": max_examples, "database": "none", "deterministic": True},
            "checks": {"enabled": True},  # every check, as --checks all
            "phases": {"stateful": {"enabled": True, "max-steps": 6}},
            "request-timeout": 10,
            "operations": [
                {
                    "include-name": READS_A_LINK,
                    "checks": {"positive_data_acceptance": {"expected-statuses": [*DEFAULT_ACCEPTED, "422"]}},
                },
                # A WebSocket handshake succeeds with 101 Switching Protocols, which the checks do not
                # expect by default.
                {
                    "include-name": WEBSOCKETS,
                    "checks": {
                        "not_a_server_error": {"expected-statuses": ["101", "2xx", "3xx", "4xx"]},
                        "positive_data_acceptance": {"expected-statuses": ["101", *DEFAULT_ACCEPTED]},
                    },
                },
                # No worker runs here, so the detailed health check says so with its documented 503.
                {
                    "include-name": "GET /health/detailed",
                    "checks": {"not_a_server_error": {"enabled": False}},
                },
            ],
        }
    )


@dataclass
class Outcome:
    calls: Counter[str] = field(default_factory=Counter)  # by phase
    failures: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        phases = ", ".join(f"{phase} {n}" for phase, n in self.calls.items())
        return (
            f"{self.calls.total()} calls ({phases}), {len(self.failures)} unique failures, "
            f"{len(self.errors)} errors"
        )


def fuzz(base: str, key: str, cursors: list[str], max_examples: int) -> Outcome:
    """Runs in a thread (schemathesis is synchronous)."""
    schema = schemathesis.openapi.from_url(base + "/api/openapi.json", config=config(key, max_examples))
    # Valid cursors are tokens this server handed out; the fuzzer picks among real ones.
    schemathesis.openapi.format("mediabot-cursor", st.sampled_from(cursors))

    @schema.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        # DELETE /api/v1/jobs/{id} cancels and is documented not to delete (the job stays readable); a
        # read after it is no use after free.
        return not (
            type(failure).__name__ == "UseAfterFree" and failure.free.startswith("DELETE /api/v1/jobs/")
        )

    outcome = Outcome()
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            outcome.calls[event.phase.value] += len(event.recorder.interactions)
            for checks in event.recorder.checks.values():
                for check in checks:
                    info = check.failure_info
                    if info is not None:
                        failure = info.failure
                        where = getattr(failure, "operation", "") or event.recorder.label
                        title = getattr(failure, "title", type(failure).__name__)
                        outcome.failures.setdefault(
                            (check.name, where, title),
                            f"{where}: {title}: {failure.message[:300]}\n    {info.code_sample}",
                        )
        elif isinstance(event, events.NonFatalError):
            outcome.errors.append(f"{event.label}: {event.info.format()[:300]}")
        elif isinstance(event, events.FatalError):
            outcome.errors.append(f"fatal: {event.exception!r}")
    return outcome


async def seed(api: Api) -> list[str]:
    """A few jobs, and the cursors that page through them."""
    for n in range(3):
        assert (await api.submit(f"https://{LOCAL}/seed{n}.mp4"))[0] == 202
    cursors = []
    path = "/api/v1/jobs?limit=1"
    while True:
        status, page, _ = await api.call("GET", path)
        assert status == 200, page
        if not page["next_cursor"]:
            return cursors
        cursors.append(page["next_cursor"])
        path = f"/api/v1/jobs?limit=1&cursor={page['next_cursor']}"


@pytest.mark.timeout(240)
async def test_openapi_fuzz_all_checks_and_links(start_api: Any) -> None:
    async with start_api(**SETTINGS) as api:
        cursors = await seed(api)
        outcome = await asyncio.to_thread(fuzz, api.base, api.key, cursors, MAX_EXAMPLES)
        print(f"schemathesis: {outcome.summary()}")
        assert not outcome.failures and not outcome.errors, "\n".join(
            [*outcome.failures.values(), *outcome.errors][:30]
        )
        assert outcome.calls.total() > 300
        assert outcome.calls["stateful"] > 0, "the document's links were followed"


if __name__ == "__main__":  # pragma: no cover - a longer run by hand: python -m tests.web.test_fuzz N
    import contextlib
    import tempfile
    from pathlib import Path

    from tests.web.conftest import web_api, web_settings

    async def by_hand(max_examples: int) -> None:
        with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(KeyboardInterrupt):
            settings = {k: v for k, v in SETTINGS.items() if k != "worker"}
            async with web_api(web_settings(Path(tmp), log_level="WARNING", **settings), worker=False) as api:
                cursors = await seed(api)
                outcome = await asyncio.to_thread(fuzz, api.base, api.key, cursors, max_examples)
                print(f"schemathesis ({max_examples} examples per operation): {outcome.summary()}")
                for line in [*outcome.failures.values(), *outcome.errors]:
                    print(" -", line)

    asyncio.run(by_hand(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
