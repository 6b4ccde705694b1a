"""The fault drills of issue 6, as functions: each starts what it needs, breaks something, checks what
people would see, and returns its figures. The tests in this package run them with small counts;
bench/drills.py runs them with the issue's counts and prints the figures.

Each drill asserts its invariants itself (so the bench fails loudly too) and returns a dict of figures:
jobs submitted, finished, lost, and the time to recover.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio import Redis
from sqlalchemy import select

from core.db.models import Request
from core.events import CHANNEL
from core.jobs.choices import SubmitRequest
from tests.faults.cluster import TERMINAL, Cluster, GatedMedia, MediabotProcess, Web, open_cluster
from tests.support.media_site import MediaSite
from tests.support.servers import TcpProxy, free_port
from tests.support.services import wait_until


async def bounded(limit: int, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the calls with at most `limit` at a time, results in order."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with slots:
            return await call()

    return await asyncio.gather(*(one(c) for c in calls))


def clip(site: MediaSite) -> tuple[str, str]:
    """A distinct small clip: (path for the site's counters, URL)."""
    path = f"/clip/{uuid.uuid4().hex}.mp4"
    return path, site.url(path)


async def wait_terminal(cluster: Cluster, web_proc: Web, ids: list[str], timeout: float) -> dict[str, Any]:
    """Poll the API until every request is terminal; {request id: job as the API shows it}."""
    final: dict[str, Any] = {}
    deadline = time.monotonic() + timeout

    while len(final) < len(ids):
        pending = [i for i in ids if i not in final]
        # One page of the list answers up to 100 of them at once.
        status, body = await cluster.call(
            web_proc, "GET", "/api/v1/jobs?limit=100&status=done,failed,cancelled"
        )
        assert status == 200, body
        for item in body["items"]:
            if item["id"] in pending:
                final[item["id"]] = item
        for request_id in pending[:20]:
            if request_id in final:
                continue
            status, item = await cluster.call(web_proc, "GET", f"/api/v1/jobs/{request_id}")
            if status == 200 and item["status"] in TERMINAL:
                final[request_id] = item
        if len(final) == len(ids):
            break
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(ids) - len(final)} of {len(ids)} jobs not finished in {timeout:g} s\n{cluster.logs()}"
            )
        await asyncio.sleep(0.25)
    return final


# -- 1. Redis restarts empty ----------------------------------------------------------------------------------


async def redis_restart(
    workdir: Path, site: MediaSite, *, jobs: int = 100, workers: int = 2
) -> dict[str, Any]:
    """Redis dies and comes back empty; `jobs` are submitted through the API while it is down.

    Chosen behaviour: submits are accepted (202, status queued: the job is in the database) and queued
    once Redis is back, by the workers' reconciler; reads keep working; /health/detailed answers 503 with
    the queue failing, and 200 again after.
    """
    async with open_cluster(workdir) as cluster:
        web_proc = cluster.start_web()
        for _ in range(workers):
            cluster.start_worker()
        await cluster.ready()
        await wait_until(lambda: _healthy(cluster, web_proc), timeout=30)

        warm_path, warm_url = clip(site)
        status, warm = await cluster.submit(web_proc, warm_url)
        assert status == 202, warm
        await wait_terminal(cluster, web_proc, [warm["id"]], timeout=30)

        cluster.redis.stop()
        down_at = time.monotonic()
        status, report = await cluster.health(web_proc)
        assert status == 503, report
        assert report["components"]["queue"]["status"] == "fail", report
        assert report["components"]["database"]["status"] == "ok", report

        paths_urls = [clip(site) for _ in range(jobs)]
        started = time.monotonic()
        answers = await bounded(10, [lambda u=url: cluster.submit(web_proc, u) for _, url in paths_urls])
        submit_s = time.monotonic() - started
        refused = [(s, b) for s, b in answers if s != 202]
        assert not refused, refused[:3]
        ids = [body["id"] for _, body in answers]
        assert {body["status"] for _, body in answers} == {"queued"}

        # Reads still work: each job, and the list.
        for request_id in ids[:10]:
            status, body = await cluster.call(web_proc, "GET", f"/api/v1/jobs/{request_id}")
            assert status == 200 and body["status"] == "queued", body
        status, listed = await cluster.call(web_proc, "GET", "/api/v1/jobs?limit=100&status=queued")
        assert status == 200, listed
        assert {item["id"] for item in listed["items"]} >= set(ids[-min(jobs, 100) :])
        # A worker (re)started while Redis is down comes up and waits for it.
        late = cluster.start_worker()
        await cluster.ready()
        outage_s = time.monotonic() - down_at

        cluster.redis.start()
        up_at = time.monotonic()
        await wait_until(lambda: _healthy(cluster, web_proc), timeout=30, interval=0.2)
        health_back_s = time.monotonic() - up_at
        final = await wait_terminal(cluster, web_proc, ids, timeout=60 + jobs * 0.5)
        drained_s = time.monotonic() - up_at

        done = [i for i in ids if final[i]["status"] == "done"]
        assert len(done) == jobs, {i: final[i].get("error") for i in ids if i not in done}
        twice = [p for p, _ in paths_urls if site.downloads(p) != 1]
        assert not twice, f"{len(twice)} clips not downloaded exactly once"
        assert site.downloads(warm_path) == 1
        assert all(w.alive for w in cluster.workers), cluster.logs()

        # The late worker really consumes: with the others stopped, it does the next job.
        for proc in cluster.workers:
            if proc is not late:
                proc.signal(signal.SIGTERM)
        assert [await p.wait(timeout=30) for p in cluster.workers if p is not late] == [0] * workers
        _, last_url = clip(site)
        status, last = await cluster.submit(web_proc, last_url)
        assert status == 202, last
        await wait_terminal(cluster, web_proc, [last["id"]], timeout=30)
        late_jobs = [j for j in await cluster.jobs() if _of(late, j.worker_id)]
        assert any(j.url == last_url and j.status == "done" for j in late_jobs), late.output()
        return {
            "submitted during outage": jobs,
            "accepted (202)": len(answers),
            "finished": len(done),
            "lost": jobs - len(done),
            "downloaded twice": len(twice),
            "outage (s)": round(outage_s, 1),
            "submit time for all (s)": round(submit_s, 2),
            "worker started during the outage: jobs done": len(late_jobs),
            "health 200 after restart (s)": round(health_back_s, 1),
            "all done after restart (s)": round(drained_s, 1),
        }


async def _healthy(cluster: Cluster, web_proc: Web) -> bool:
    status, _ = await cluster.health(web_proc)
    return status == 200


# -- 3. SIGTERM on a worker, SIGTERM on the web app -------------------------------------------------------------


def _of(proc: MediabotProcess, worker_id: str | None) -> bool:
    """Whether a job's worker_id names this process (`host-PID-random`)."""
    return bool(worker_id) and f"-{proc.pid}-" in str(worker_id)


async def worker_sigterm(
    workdir: Path, site: MediaSite, gated: GatedMedia, *, grace_s: float = 3
) -> dict[str, Any]:
    """A worker holding two downloads gets SIGTERM, with a third job waiting in the queue.

    It stops taking jobs (the waiting one is left to others), finishes the download that can finish within
    the grace period, hands the other back to the queue when the grace period ends, and exits 0. A second
    worker then finishes the handed-back job and the waiting one.
    """
    from tests.support.services import running_services

    async with (
        open_cluster(workdir, shutdown_grace_s=grace_s, worker_concurrency=2) as cluster,
        running_services(cluster.settings, worker=False) as services,
    ):
        first = cluster.start_worker()
        await cluster.ready()
        a_name, b_name = f"a{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"
        a = await services.jobs.submit(_ask(gated.url(a_name)))
        b = await services.jobs.submit(_ask(gated.url(b_name)))

        async def both_downloading() -> bool:
            rows = [await cluster.job(a.job.id), await cluster.job(b.job.id)]
            return all(r.status == "running" and (r.downloaded_bytes or 0) > 0 for r in rows)

        await wait_until(both_downloading, timeout=30)
        c_path, c_url = clip(site)
        c = await services.jobs.submit(_ask(c_url))

        first.signal(signal.SIGTERM)
        signalled = time.monotonic()
        await wait_until(lambda: "shutting down" in first.output(), timeout=10)
        gated.release(a_name)  # this one can finish within the grace period
        # Done within the grace period (or, if not, handed back: the assertions below say which).
        await wait_until(lambda: _status_is_not(cluster, a.job.id, "running"), timeout=grace_s + 10)
        # Only now a second worker: until it is up, the first one is the only one that could take C.
        second = cluster.start_worker()
        code = await first.wait(timeout=grace_s + 20)
        exit_s = time.monotonic() - signalled
        assert code == 0, first.output()
        assert exit_s < grace_s + 10, exit_s

        job_a = await cluster.job(a.job.id)
        assert job_a.status == "done" and _of(first, job_a.worker_id) and job_a.attempts == 1, (
            job_a.status,
            first.output(),
        )
        job_b = await cluster.job(b.job.id)
        assert not (job_b.status == "running" and _of(first, job_b.worker_id)), "B was handed back"
        assert job_b.status != "done"

        gated.release(b_name)
        finals = {s.job.id: await services.jobs.wait(s.job.id, timeout=60) for s in (b, c)}
        done_s = time.monotonic() - signalled
        assert {f.status for f in finals.values()} == {"done"}, [f.error for f in finals.values()]
        job_b, job_c = await cluster.job(b.job.id), await cluster.job(c.job.id)
        # Handed back, not lost: the attempt the first worker gave up is not counted against the job.
        assert _of(second, job_b.worker_id) and job_b.attempts == 1, (job_b.worker_id, job_b.attempts)
        assert _of(second, job_c.worker_id) and job_c.attempts == 1, "the stopping worker took no new job"
        assert site.downloads(c_path) == 1
        leftovers = [p for p in cluster.settings.tmp_dir.glob(f"*-{first.pid}-*/**/*") if p.is_file()]
        assert not leftovers, leftovers
        return {
            "jobs": 3,
            "finished within grace by the stopping worker": 1,
            "handed back and finished by another worker": 1,
            "left in the queue for another worker": 1,
            "lost": 0,
            "grace period (s)": grace_s,
            "exit code": code,
            "exit after SIGTERM (s)": round(exit_s, 1),
            "all done after SIGTERM (s)": round(done_s, 1),
        }


async def _status_is_not(cluster: Cluster, job_id: str, status: str) -> bool:
    return (await cluster.job(job_id)).status != status


def _ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="drill")


async def web_sigterm(workdir: Path) -> dict[str, Any]:
    """`mediabot web` gets SIGTERM with two WebSockets open and a request in flight (its database answers
    slowly: the web process reaches PostgreSQL through a proxy the drill holds).

    The sockets get a close frame with 1001 (going away), the request is answered, the process exits 0.
    """
    async with open_cluster(workdir, shutdown_grace_s=10) as cluster:
        proxy = TcpProxy(cluster.pg.port)
        await proxy.start()
        try:
            web_proc = cluster.start_web(
                database_url=cluster.pg.url().replace(str(cluster.pg.port), str(proxy.port))
            )
            await cluster.ready()
            status, job = await cluster.submit(
                web_proc, "http://127.0.0.1:9/never.mp4"
            )  # no worker: stays queued
            assert status == 202, job
            sockets = [
                await cluster.http.ws_connect(web_proc.ws_url(f"/api/v1/events?token={cluster.key}")),
                await cluster.http.ws_connect(
                    web_proc.ws_url(f"/api/v1/jobs/{job['id']}/events?token={cluster.key}")
                ),
            ]
            for ws in sockets:
                first = await ws.receive(timeout=10)
                assert first.type == aiohttp.WSMsgType.TEXT, first

            proxy.pause()
            in_flight = asyncio.create_task(cluster.submit(web_proc, "http://127.0.0.1:9/late.mp4"))
            await asyncio.sleep(0.5)
            assert not in_flight.done()

            web_proc.signal(signal.SIGTERM)
            signalled = time.monotonic()
            closes = []
            for ws in sockets:
                message = await ws.receive(timeout=10)
                closes.append((message.type, ws.close_code))
                await ws.close()
            close_s = time.monotonic() - signalled
            assert closes == [(aiohttp.WSMsgType.CLOSE, 1001)] * 2, closes
            # The process waits for the request (up to MEDIABOT_SHUTDOWN_GRACE_S), however long it takes.
            await asyncio.sleep(1)
            assert not in_flight.done()

            proxy.resume()
            resumed = time.monotonic()
            status, body = await asyncio.wait_for(in_flight, timeout=10)
            assert status == 202, (body, web_proc.output())
            answered_s = time.monotonic() - resumed
            code = await web_proc.wait(timeout=30)
            exit_s = time.monotonic() - signalled
            assert code == 0, web_proc.output()
        finally:
            await proxy.stop()
        urls = sorted(j.url for j in await cluster.jobs())
        assert urls == ["http://127.0.0.1:9/late.mp4", "http://127.0.0.1:9/never.mp4"], urls
        return {
            "websockets open": len(sockets),
            "closed with 1001": sum(1 for c in closes if c[1] == 1001),
            "close frames after SIGTERM (s)": round(close_s, 2),
            "in-flight request answered": status,
            "its database held after SIGTERM (s)": round(resumed - signalled, 1),
            "answered once its database answered (s)": round(answered_s, 2),
            "exit code": code,
            "exit after SIGTERM (s)": round(exit_s, 1),
        }


async def web_sigterm_during_startup(workdir: Path) -> dict[str, Any]:
    """SIGTERM while `mediabot web` is still starting (here: waiting for an unreachable Redis): it stops
    cleanly with exit code 0 instead of dying by the signal."""
    async with open_cluster(workdir) as cluster:
        dead_redis = f"redis://127.0.0.1:{free_port()}/0"
        web_proc = cluster.start_web(redis_url=dead_redis)
        await wait_until(lambda: "event bus lost Redis" in web_proc.output(), timeout=30, interval=0.02)
        web_proc.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = await web_proc.wait(timeout=30)
        exit_s = time.monotonic() - signalled
        assert code == 0, (code, web_proc.output())
        return {"exit code": code, "exit after SIGTERM (s)": round(exit_s, 2)}


# -- 4. PostgreSQL restarted while jobs run ---------------------------------------------------------------------


async def postgres_restart(
    workdir: Path, site: MediaSite, gated: GatedMedia, *, jobs: int = 20, outage_s: float = 3
) -> dict[str, Any]:
    """PostgreSQL crashes (immediate shutdown) while two long downloads run and `jobs` short ones flow,
    and comes back `outage_s` later. Meanwhile the API answers 503, not 500 and not a hang. Afterwards
    web and workers work again without a restart, every job finishes, and none is left `running`."""
    async with open_cluster(workdir) as cluster:
        web_proc = cluster.start_web()
        cluster.start_worker()
        cluster.start_worker()
        await cluster.ready()
        names = [f"pg{uuid.uuid4().hex[:8]}" for _ in range(2)]
        long_ids = []
        for name in names:
            status, body = await cluster.submit(web_proc, gated.url(name))
            assert status == 202, body
            long_ids.append(body["id"])

        async def downloading() -> bool:
            for request_id in long_ids:
                _, body = await cluster.call(web_proc, "GET", f"/api/v1/jobs/{request_id}")
                if body["status"] != "running" or not (body["progress"]["downloaded_bytes"] or 0):
                    return False
            return True

        await wait_until(downloading, timeout=30)
        clips = [clip(site) for _ in range(jobs)]
        answers = await bounded(8, [lambda u=url: cluster.submit(web_proc, u) for _, url in clips])
        assert {s for s, _ in answers} == {202}, answers[:3]
        short_ids = [body["id"] for _, body in answers]

        at_crash = [r for r in await cluster.jobs() if r.status not in TERMINAL]
        await asyncio.to_thread(cluster.pg.stop, "immediate")
        down_at = time.monotonic()
        status, body = await cluster.call(web_proc, "GET", f"/api/v1/jobs/{long_ids[0]}")
        assert status == 503 and body["error"]["code"] == "unavailable", (status, body)
        status, report = await cluster.health(web_proc)
        assert status == 503 and report["components"]["database"]["status"] == "fail", report
        await asyncio.sleep(max(0.0, outage_s - (time.monotonic() - down_at)))
        await asyncio.to_thread(cluster.pg.start)
        up_at = time.monotonic()

        async def api_answers() -> bool:
            status, _ = await cluster.call(web_proc, "GET", f"/api/v1/jobs/{long_ids[0]}")
            return status == 200

        await wait_until(api_answers, timeout=30, interval=0.1)
        api_back_s = time.monotonic() - up_at
        for name in names:
            gated.release(name)
        ids = long_ids + short_ids
        final = await wait_terminal(cluster, web_proc, ids, timeout=90)
        drained_s = time.monotonic() - up_at
        not_done = {i: final[i].get("error") for i in ids if final[i]["status"] != "done"}
        assert not not_done, not_done
        rows = await cluster.jobs()
        running = [r.id for r in rows if r.status == "running"]
        assert not running, running
        assert all(p.alive for p in [*cluster.webs, *cluster.workers]), cluster.logs()
        status, _ = await cluster.health(web_proc)
        assert status == 200
        retried = sum(1 for r in rows if r.attempts > 1)
        return {
            "jobs": len(ids),
            "running or queued at the crash": len(at_crash),
            "finished": len(ids) - len(not_done),
            "lost": len(not_done),
            "left running": len(running),
            "retried (lease expired in the outage)": retried,
            "outage (s)": outage_s,
            "API answers again after restart (s)": round(api_back_s, 2),
            "all done after restart (s)": round(drained_s, 1),
        }


# -- 5. Two web processes, three workers ------------------------------------------------------------------------


async def two_webs_three_workers(workdir: Path, site: MediaSite, *, jobs: int = 200) -> dict[str, Any]:
    """`jobs` distinct clips submitted across two web processes to three workers on one Redis and
    PostgreSQL: each downloaded exactly once, and a WebSocket on each web process sees every event of every
    job, whichever process took the request."""
    async with open_cluster(workdir) as cluster:
        webs = [cluster.start_web(), cluster.start_web()]
        for _ in range(3):
            cluster.start_worker()
        await cluster.ready()
        seen: list[dict[str, list[tuple[str, str, int | None]]]] = [{}, {}]
        ended: list[set[str]] = [set(), set()]
        sockets = [
            await cluster.http.ws_connect(w.ws_url(f"/api/v1/events?token={cluster.key}"), heartbeat=None)
            for w in webs
        ]

        async def follow(n: int) -> None:
            async for message in sockets[n]:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                job = json.loads(message.data)["job"]
                seen[n].setdefault(job["id"], []).append(
                    (job["status"], job["updated_at"], job["progress"]["downloaded_bytes"])
                )
                if job["status"] in TERMINAL:
                    ended[n].add(job["id"])

        # The ground truth: every job message published on the bus, in the order Redis delivered them.
        published: list[dict[str, Any]] = []
        tap = Redis.from_url(cluster.redis.url)
        pubsub = tap.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(CHANNEL)

        async def record() -> None:
            while True:
                raw = await pubsub.get_message(timeout=1.0)
                if raw is not None:
                    body = json.loads(raw["data"])
                    if body.get("job"):
                        published.append(body["job"])

        followers = [asyncio.create_task(follow(n)) for n in (0, 1)] + [asyncio.create_task(record())]
        try:
            clips = [clip(site) for _ in range(jobs)]
            started = time.monotonic()
            answers = await bounded(
                16, [lambda n=n, u=url: cluster.submit(webs[n % 2], u) for n, (_, url) in enumerate(clips)]
            )
            submit_s = time.monotonic() - started
            assert {s for s, _ in answers} == {202}, [a for a in answers if a[0] != 202][:3]
            ids = [body["id"] for _, body in answers]
            try:
                await wait_until(
                    lambda: all(set(ids) <= e for e in ended), timeout=60 + jobs * 0.5, interval=0.2
                )
            except TimeoutError:
                raise AssertionError(
                    f"terminal events seen: {[len(e) for e in ended]} of {jobs}\n{cluster.logs()}"
                ) from None
            finished_s = time.monotonic() - started
        finally:
            for task in followers:
                task.cancel()
            for ws in sockets:
                await ws.close()
            await pubsub.aclose()
            await tap.aclose()
        statuses = {seen[0][i][-1][0] for i in ids} | {seen[1][i][-1][0] for i in ids}
        assert statuses == {"done"}, statuses
        # The same states in the same order on both (updated_at is left out: a lagging socket shows a
        # finished request's finished_at there).
        differ = [i for i in ids if [e[::2] for e in seen[0][i]] != [e[::2] for e in seen[1][i]]]
        assert not differ, [(seen[0][i], seen[1][i]) for i in differ[:2]]
        assert all(seen[0][i][0][0] == "queued" for i in ids), "each subscriber saw each job from its start"
        # Each socket forwards every published state that is newer than the last one it sent for that job
        # (a snapshot supersedes older ones), up to the job's end: count those per job.
        expected: dict[str, int] = {}
        newest: dict[str, int] = {}
        over: set[str] = set()
        for job in published:
            job_id = job["id"]
            if job_id in over:
                continue
            if job["seq"] > newest.get(job_id, 0) or job["status"] in TERMINAL:
                newest[job_id] = max(job["seq"], newest.get(job_id, 0))
                expected[job_id] = expected.get(job_id, 0) + 1
            if job["status"] in TERMINAL:
                over.add(job_id)
        async with cluster.sessions() as session:
            job_of = dict((await session.execute(select(Request.id, Request.job_id))).all())
        short = [i for i in ids if len(seen[0][i]) != expected[job_of[i]]]
        assert not short, [(seen[0][i], expected[job_of[i]]) for i in short[:2]]
        downloads = [site.downloads(p) for p, _ in clips]
        assert downloads == [1] * jobs, f"{sum(d != 1 for d in downloads)} clips not downloaded exactly once"
        rows = await cluster.jobs()
        assert len(rows) == jobs and {r.attempts for r in rows} == {1}, sorted({r.attempts for r in rows})
        per_worker: dict[str, int] = {}
        for row in rows:
            per_worker[str(row.worker_id)] = per_worker.get(str(row.worker_id), 0) + 1
        events = [sum(len(v) for v in s.values()) for s in seen]
        return {
            "jobs submitted (web 1 / web 2)": f"{jobs - jobs // 2} / {jobs // 2}",
            "finished": jobs,
            "lost": 0,
            "downloaded exactly once": downloads.count(1),
            "jobs per worker": " / ".join(str(n) for n in sorted(per_worker.values(), reverse=True)),
            "job events published on the bus": len(published),
            "of them newer than the job's last state (due to each socket)": sum(expected.values()),
            "received by the socket on web 1 / on web 2": f"{events[0]} / {events[1]}",
            "submit time (s)": round(submit_s, 1),
            "all done (s)": round(finished_s, 1),
            "throughput (jobs/s)": round(jobs / finished_s, 1),
        }


# -- 6. Disk full, or storage broken, while saving -------------------------------------------------------------


class CannotMount(Exception):
    """This machine does not let us mount a tmpfs (not root, or no CAP_SYS_ADMIN)."""


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise CannotMount(done.stderr.strip() or f"mount exited {done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


STORAGE_MODES = ("files_disk_full", "data_disk_full", "files_dir_broken")


async def storage_failure(workdir: Path, site: MediaSite, mode: str) -> dict[str, Any]:
    """A download whose file cannot be stored:

    - files_disk_full: the files volume (a 64 KiB tmpfs) is full; the temp dir is elsewhere, so storing is
      a copy that runs out of space half-way;
    - data_disk_full: the whole data dir (a 160 KiB tmpfs, temp dir included) fills up during the download;
    - files_dir_broken: the directory a file would go into cannot be made (a file is in the way).

    The job fails with storage_error and a plain message, nothing half-written stays in the files or
    temp dirs, and once the disk is fixed the same link downloads fine. The clip comes without a
    Content-Length: a size known beforehand is refused before the download (test_storage_errors).
    """
    from tests.support.services import make_settings, running_services

    data_dir = workdir / "data"
    settings = make_settings(
        workdir,
        database_url=f"sqlite+aiosqlite:///{workdir / 'db' / 'mediabot.db'}",
        secret_key="drill-secret-key",
    )
    url = site.url(f"/chunked/{uuid.uuid4().hex}.mp4")
    with contextlib.ExitStack() as fixes:
        if mode == "files_disk_full":
            fixes.enter_context(tiny_tmpfs(settings.files_dir, "64k"))
        elif mode == "data_disk_full":
            fixes.enter_context(tiny_tmpfs(data_dir, "160k"))
        elif mode == "files_dir_broken":
            settings.files_dir.mkdir(parents=True)
            for n in range(256):  # every job id's first level: files where directories should be
                (settings.files_dir / f"{n:02x}").write_bytes(b"")
        else:
            raise ValueError(mode)
        async with running_services(settings) as services:
            submission = await services.jobs.submit(_ask(url))
            final = await services.jobs.wait(submission.job.id, timeout=60)

            def leftovers() -> list[str]:
                try:
                    return sorted(
                        str(p.relative_to(data_dir))
                        for p in data_dir.rglob("*")
                        if p.is_file() and not (mode == "files_dir_broken" and p.parent == settings.files_dir)
                    )
                except FileNotFoundError:  # the worker is removing its temp dir right now: look again
                    return ["(being removed)"]

            # The failure is published before the worker's temp dir is removed: give it a moment.
            with contextlib.suppress(TimeoutError):
                await wait_until(lambda: not leftovers(), timeout=5)
            left = leftovers()
        assert final.status == "failed", final
        assert final.error is not None and final.error.code == "storage_error", final.error
        message = final.error.message
        assert "could not be saved" in message, message
        if mode != "files_dir_broken":
            assert "full" in message, message
        assert not left, left
    # Disk fixed (unmounted, or the files out of the way removed): the same link works again.
    if mode == "files_dir_broken":
        for n in range(256):
            (settings.files_dir / f"{n:02x}").unlink()
    fixed_at = time.monotonic()
    async with running_services(settings) as services:
        again = await services.jobs.submit(_ask(url))
        retried = await services.jobs.wait(again.job.id, timeout=60)
        stored = await services.jobs.local_path(retried.id)
    assert retried.status == "done", retried.error
    assert stored is not None and stored.stat().st_size == site.files.video_mp4.stat().st_size
    return {
        "jobs": 1,
        "failed with storage_error": 1,
        "message": message,
        "files left behind": len(left),
        "done after the disk was fixed (s)": round(time.monotonic() - fixed_at, 1),
    }
