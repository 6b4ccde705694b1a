"""Web app figures, on 127.0.0.1 only, bounded in time; prints its results and stops.

1. GET /api/v1/jobs/{id} (auth + rate limit + database read + JSON) against a bare aiohttp handler
   returning the same JSON, in the same run: requests/s, p50/p99 latency, and the ratio.
2. 1,000 WebSocket subscribers on /api/v1/jobs/{id}/events, all following one job while the bench publishes
   its events on the event bus: events delivered vs expected, and the fan-out delay (event time -> received).

The load runs in a separate process (spawned), so client and server do not share one event loop.

    .venv/bin/python bench/web_bench.py [--seconds 5] [--concurrency 32] [--subscribers 1000] [--events 40]
        [--interval 0.25]                     # seconds between events (a worker publishes about 4 a second)
        [--redis redis://127.0.0.1:6379/5]    # publish through Redis pub/sub instead of the in-process bus
        [--database-url postgresql://postgres@127.0.0.1:5432/DB]   # instead of SQLite
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HARD_LIMIT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


# --- load generators (run in a spawned child process) ------------------------------------------------------


def http_load(url: str, headers: dict[str, str], seconds: float, concurrency: int, out: Any) -> None:
    import aiohttp

    async def run() -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0
        deadline = time.monotonic() + seconds
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:
            # Warm up connections and caches.
            for _ in range(20):
                async with http.get(url, headers=headers) as resp:
                    await resp.read()

            async def worker() -> None:
                nonlocal errors
                while time.monotonic() < deadline:
                    started = time.perf_counter()
                    async with http.get(url, headers=headers) as resp:
                        await resp.read()
                        if resp.status != 200:
                            errors += 1
                    latencies.append(time.perf_counter() - started)

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.monotonic() - started
        return {
            "requests": len(latencies),
            "errors": errors,
            "rps": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
        }

    out.put(asyncio.run(run()))


def ws_load(url: str, subscribers: int, expected: int, ready: Any, out: Any, timeout_s: float) -> None:
    """Open `subscribers` sockets; after the snapshot on each, say ready; then record every event until the
    server closes them."""
    import aiohttp

    async def run() -> dict[str, Any]:
        connector = aiohttp.TCPConnector(limit=0)
        received: list[list[tuple[int, float, str]]] = [[] for _ in range(subscribers)]
        opened = asyncio.Semaphore(100)
        all_ready = asyncio.Event()
        ready_count = 0
        async with aiohttp.ClientSession(connector=connector) as http:

            async def one(n: int) -> None:
                nonlocal ready_count
                async with opened:
                    ws = await http.ws_connect(url, max_msg_size=1 << 20)
                try:
                    first = json.loads((await ws.receive(timeout=60)).data)
                    snapshot_seq = first["job"]["progress"]["downloaded_bytes"] or 0
                    ready_count += 1
                    if ready_count == subscribers:
                        all_ready.set()
                    async for message in ws:
                        now = time.time()
                        job = json.loads(message.data)["job"]
                        marker = job["progress"]["downloaded_bytes"] or 0
                        if marker > snapshot_seq:
                            sent = datetime.fromisoformat(job["updated_at"]).timestamp()
                            received[n].append((marker, now - sent, job["status"]))
                finally:
                    await ws.close()

            tasks = [asyncio.create_task(one(n)) for n in range(subscribers)]
            connect_started = time.monotonic()
            await asyncio.wait_for(all_ready.wait(), timeout=timeout_s)
            connect_s = time.monotonic() - connect_started
            ready.put(connect_s)
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=timeout_s)
        delays = [d for r in received for _, d, status in r if status == "running"]
        final = [d for r in received for _, d, status in r if status != "running"]
        complete = sum(1 for r in received if sorted(m for m, _, _ in r) == list(range(1, expected + 1)))
        return {
            "subscribers": subscribers,
            "connect_s": connect_s,
            "expected": subscribers * expected,
            "delivered": sum(len(r) for r in received),
            "complete_subscribers": complete,
            "delay_p50_ms": percentile(delays, 50) * 1000,
            "delay_p99_ms": percentile(delays, 99) * 1000,
            "delay_max_ms": max(delays) * 1000 if delays else float("nan"),
            "final_p99_ms": percentile(final, 99) * 1000,
        }

    out.put(asyncio.run(run()))


# --- the server side -----------------------------------------------------------------------------------------


async def in_child(target: Any, *args: Any, timeout_s: float) -> Any:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, out), daemon=True)
    proc.start()
    try:
        return await asyncio.wait_for(asyncio.to_thread(out.get), timeout=timeout_s)
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()


async def bench_get(
    services: Any, base: str, key: str, job_id: str, seconds: float, concurrency: int
) -> None:
    from aiohttp import web

    headers = {"Authorization": f"Bearer {key}"}
    async with services.http.get(f"{base}/api/v1/jobs/{job_id}", headers=headers) as resp:
        body = await resp.read()
        assert resp.status == 200, body

    async def bare(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/jobs/{id}", bare)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        results = {}
        for name, url in (
            ("mediabot", f"{base}/api/v1/jobs/{job_id}"),
            ("bare aiohttp", f"http://127.0.0.1:{port}/api/v1/jobs/{job_id}"),
        ):
            results[name] = await in_child(
                http_load, url, headers, seconds, concurrency, timeout_s=seconds + 60
            )
    finally:
        await runner.cleanup()
    print(f"\nGET /api/v1/jobs/{{id}}: {seconds:g} s each, {concurrency} connections, {len(body)} byte body")
    for name, r in results.items():
        print(
            f"  {name:<13} {r['rps']:8.0f} req/s   p50 {r['p50_ms']:6.2f} ms   p99 {r['p99_ms']:6.2f} ms"
            f"   ({r['requests']} requests, {r['errors']} errors)"
        )
    ratio = results["mediabot"]["rps"] / results["bare aiohttp"]["rps"]
    print(f"  ratio mediabot / bare: {ratio:.2f}")


async def bench_fanout(
    services: Any, base: str, key: str, request_id: str, subscribers: int, events: int, interval: float
) -> None:
    from core.events import Message

    _, job = await services.jobs.get_request(request_id)
    url = base.replace("http://", "ws://") + f"/api/v1/jobs/{request_id}/events?token={key}"
    ctx = multiprocessing.get_context("spawn")
    ready, out = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=ws_load, args=(url, subscribers, events, ready, out, 120.0), daemon=True)
    proc.start()
    try:
        connect_s = await asyncio.wait_for(asyncio.to_thread(ready.get), timeout=150)
        await asyncio.sleep(0.5)
        published = time.monotonic()
        # Progress events (downloaded_bytes = 1..events-1 marks each one), then the terminal one.
        for n in range(1, events + 1):
            status = "running" if n < events else "cancelled"
            view = job.model_copy(
                update={
                    "seq": job.seq + n,
                    "status": status,
                    "progress": job.progress.model_copy(update={"downloaded_bytes": n}),
                    "updated_at": datetime.now(UTC),
                }
            )
            await services.bus.publish(Message("job", job=view))
            await asyncio.sleep(interval)
        publish_s = time.monotonic() - published
        r = await asyncio.wait_for(asyncio.to_thread(out.get), timeout=150)
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.kill()
    print(
        f"\nWebSocket fan-out: {subscribers} subscribers on one job, {events} events over {publish_s:.1f} s "
        f"(bus: {services.bus.name})"
    )
    print(f"  connected and got the snapshot: {connect_s:.1f} s for {subscribers} sockets")
    print(
        f"  delivered {r['delivered']} / expected {r['expected']}; "
        f"{r['complete_subscribers']} / {subscribers} subscribers got every event"
    )
    print(
        f"  fan-out delay (progress events): p50 {r['delay_p50_ms']:.1f} ms, p99 {r['delay_p99_ms']:.1f} ms, "
        f"max {r['delay_max_ms']:.1f} ms; terminal event p99 {r['final_p99_ms']:.1f} ms"
    )


class _Running:
    def __init__(self, services: Any, http: Any) -> None:
        self.jobs = services.jobs
        self.bus = services.bus
        self.keys = services.keys
        self.http = http


async def main(args: argparse.Namespace) -> None:
    import aiohttp

    from core.jobs.choices import SubmitRequest
    from tests.support.services import make_settings, running_services
    from web.server import serving

    logging.basicConfig(level=logging.WARNING)
    # No worker runs in this bench; the in-process broker's attempt to run the queued job is noise.
    logging.getLogger("taskiq").setLevel(logging.CRITICAL)
    logging.getLogger("web.access").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="mediabot-web-bench-") as tmp:
        overrides: dict[str, Any] = dict(
            port=free_port(),
            api_calls_per_minute=10_000_000,
            api_rate_per_minute=1_000_000,
            # Every subscriber connects from 127.0.0.1.
            max_connections_per_client=args.subscribers + args.concurrency + 100,
            log_level="WARNING",
        )
        if args.redis:
            overrides["redis_url"] = args.redis
        if args.database_url:
            overrides["database_url"] = args.database_url
        settings = make_settings(Path(tmp), **overrides)
        async with (
            running_services(settings, worker=False) as services,
            serving(services),
            aiohttp.ClientSession() as http,
        ):
            _, key = await services.keys.create("bench")
            info = await services.keys.verify(key)
            assert info is not None
            submission = await services.jobs.submit(
                SubmitRequest(text="https://example.com/bench.mp4", source="api", user_id=info.id)
            )
            base = f"http://127.0.0.1:{settings.port}"
            print(
                f"mediabot web bench: database {settings.database_url.split(':')[0]}, bus {services.bus.name}"
            )
            running = _Running(services, http)
            await bench_get(running, base, key, submission.request.id, args.seconds, args.concurrency)
            await bench_fanout(
                running, base, key, submission.request.id, args.subscribers, args.events, args.interval
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--redis", default=None, help="a redis:// URL (127.0.0.1 only) for the event bus")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between published events")
    parser.add_argument(
        "--database-url",
        default=None,
        help="an empty, migrated-or-not database on 127.0.0.1 (default: SQLite)",
    )
    arguments = parser.parse_args()
    for option in (arguments.redis, arguments.database_url):
        if option and "@127.0.0.1" not in option and "//127.0.0.1" not in option:
            parser.error("--redis and --database-url must point at 127.0.0.1")

    async def bounded() -> None:
        await asyncio.wait_for(main(arguments), timeout=HARD_LIMIT_S)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(bounded())
