"""`mediabot`: run everything in one process, or one role per process when Redis is set."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any

from core import db
from core.apikeys import ApiKeyService
from core.config import Settings, SettingsError, load_settings
from core.errors import MediabotError
from core.logs import setup_logging
from core.planner import finished_items, playlist_line
from core.render import progress_line
from core.schemas import JobView, SubmitRequest
from core.services import Services, build_services
from core.ytdlp.upkeep import ytdlp_upkeep
from mediabot import ytdlp_cli
from worker.broker import make_broker
from worker.host import hosted_worker
from worker.queue import TaskiqQueue

log = logging.getLogger("mediabot")

Component = Callable[[Services], AbstractAsyncContextManager[Any]]


def _secrets(settings: Settings) -> list[str]:
    return [
        str(getattr(settings, name, "") or "")
        for name in ("secret_key", "webhook_secret", "telegram_token", "discord_token")
    ]


@contextlib.asynccontextmanager
async def services_for(settings: Settings, *, worker: bool) -> AsyncIterator[Services]:
    """Services with a queue; with `worker`, a worker runs in this process too."""
    broker = make_broker(settings)
    queue = TaskiqQueue(broker, settings.redis_url)
    services = await build_services(settings, queue)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(queue.close)
        stack.push_async_callback(services.close)
        if worker:
            await stack.enter_async_context(hosted_worker(broker, services))
        else:
            await broker.startup()
            stack.push_async_callback(broker.shutdown)
        yield services


def front_ends(settings: Settings, only: str | None = None) -> list[Component]:
    """The front ends this process hosts: the web app always (unless `only` names another), bots when
    their tokens are set."""
    found: list[Component] = []
    if only in (None, "web"):
        with contextlib.suppress(ImportError):
            from web.server import serving

            found.append(serving)
    if only in (None, "telegram") and getattr(settings, "telegram_token", None):
        from bots.telegram.runner import running as telegram_running

        found.append(telegram_running)
    if only in (None, "discord") and getattr(settings, "discord_token", None):
        from bots.discord.runner import running as discord_running

        found.append(discord_running)
    return found


def _stop_requested() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets, handled from this moment on. Called before start-up, so a
    signal that arrives while the process is still starting stops it cleanly (exit 0) as soon as start-up
    is done, instead of killing it on the spot by the default action."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _until_signalled(stop: asyncio.Event) -> None:
    await stop.wait()
    log.info("shutting down")


async def _serve(
    settings: Settings,
    *,
    worker: bool,
    only: str | None,
    on_ready: Callable[[Services], Awaitable[None]] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    stop = stop or _stop_requested()
    components = front_ends(settings, only)
    if only and not components:
        print(f"mediabot: nothing to run for '{only}' (is its token set?)", file=sys.stderr)
        return 2
    async with (
        ytdlp_upkeep(settings, stop, enabled=worker),
        services_for(settings, worker=worker) as services,
        AsyncExitStack() as stack,
    ):
        for component in components:
            if stop.is_set():
                break
            await stack.enter_async_context(component(services))
        if on_ready is not None and not stop.is_set():
            await on_ready(services)
        await _until_signalled(stop)
    return 0


async def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    stop = _stop_requested()
    await db.upgrade(settings.database_url)
    log.info(
        "mediabot running: database %s, queue %s, storage %s",
        "SQLite" if settings.is_sqlite else "PostgreSQL",
        "Redis" if settings.redis_url else "in-process",
        settings.storage,
    )
    return await _serve(settings, worker=True, only=None, on_ready=_first_key, stop=stop)


async def _first_key(services: Services) -> None:
    """A first run with no API key: create one and show how to use it, so the API works at once."""
    if await services.keys.count_active():
        return
    for name in ("default", *(f"default-{n}" for n in range(2, 10))):
        try:
            _, key = await services.keys.create(name)
        except MediabotError:
            if await services.keys.count_active():
                return  # another process created one at the same moment
            continue  # a revoked key holds the name
        break
    else:
        return
    url = services.settings.public_url
    print(
        f"No API key existed, so one was created (name {name!r}; list keys with `mediabot apikey list`):\n"
        f"  {key}\n"
        "Try it:\n"
        f"  curl -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n"
        f'       -d \'{{"url": "https://example.com/video"}}\' {url}/api/v1/jobs\n'
        f"API docs: {url}/api/docs",
        flush=True,
    )


async def cmd_apikey(settings: Settings, args: argparse.Namespace) -> int:
    """Create, list or revoke API keys. Only a hash is stored: a new key is shown once, as the last line."""
    await db.upgrade(settings.database_url)
    engine = db.create_engine(settings.database_url)
    try:
        keys = ApiKeyService(db.session_factory(engine))
        if args.action == "create":
            if not args.name:
                print("mediabot: `mediabot apikey create NAME`", file=sys.stderr)
                return 2
            info, key = await keys.create(args.name)
            print(f"Created API key {info.name!r}. Store it now: it cannot be shown again.")
            print(key)
        elif args.action == "list":
            rows = await keys.list()
            if not rows:
                print("No API keys. Create one with `mediabot apikey create NAME`.")
            for info in rows:
                state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
                used = f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else "never"
                print(
                    f"{info.name:<24} {info.prefix}...  created {info.created_at:%Y-%m-%d %H:%M}  "
                    f"last used {used}  {state}"
                )
        else:
            if not args.name:
                print("mediabot: `mediabot apikey revoke NAME`", file=sys.stderr)
                return 2
            info = await keys.revoke(args.name)
            print(f"Revoked API key {info.name!r}.")
        return 0
    finally:
        await engine.dispose()


async def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.redis_url:
        print(
            "mediabot: `mediabot worker` needs MEDIABOT_REDIS_URL (a shared queue). "
            "Without Redis, `mediabot run` runs the worker in its own process.",
            file=sys.stderr,
        )
        return 2
    stop = _stop_requested()
    async with ytdlp_upkeep(settings, stop), services_for(settings, worker=True):
        await _until_signalled(stop)
    return 0


def _role(name: str) -> Callable[[Settings, argparse.Namespace], Any]:
    async def cmd(settings: Settings, args: argparse.Namespace) -> int:
        # Without Redis there is no shared queue, so this process must run the downloads itself.
        return await _serve(settings, worker=not settings.redis_url, only=name)

    return cmd


async def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        await db.upgrade(settings.database_url, args.revision)
    else:
        await db.downgrade(settings.database_url, args.revision)
    print(f"database {args.action}d to {args.revision}")
    return 0


async def _where(services: Services, view: JobView) -> str:
    path = await services.jobs.local_path(view.id)
    return str(path) if path is not None and path.exists() else await services.jobs.link(view.id)


async def _print_items(services: Services, request_id: str, playlist: JobView) -> int:
    """A playlist: each item's file as it finishes, one per line; 1 when any item failed."""
    print(playlist_line(playlist), file=sys.stderr)
    failed = 0
    async for request, view in finished_items(services.jobs, request_id):
        if view.status == "done":
            print(await _where(services, view))
        else:
            failed += 1
            reason = view.error.message if view.error else view.status
            print(f"mediabot: {view.title or request.url}: {reason}", file=sys.stderr)
        await services.jobs.mark_delivered(request.id)
    await services.jobs.mark_delivered(request_id)
    return 1 if failed else 0


async def cmd_download(settings: Settings, args: argparse.Namespace) -> int:
    await db.upgrade(settings.database_url)
    async with services_for(settings, worker=not settings.redis_url) as services:
        request = SubmitRequest(
            text=args.url,
            source="cli",
            user_id=getpass.getuser(),
            kind="audio" if args.audio else "video",
            quality=args.quality,
            format_id=args.format,
            subtitles=tuple(lang for lang in (args.subs or "").split(",") if lang),
        )
        try:
            submission = await services.jobs.submit(request)
        except MediabotError as exc:
            print(f"mediabot: {exc.message}", file=sys.stderr)
            return 1
        tty = sys.stderr.isatty()
        final = submission.job
        try:
            async for view in services.jobs.watch(submission.job.id):
                final = view
                line = (
                    f"{view.status:<9} {progress_line(view, 24)}" if view.status == "running" else view.status
                )
                if tty:
                    print(f"\r\x1b[2K{line}", end="", file=sys.stderr, flush=True)
                elif view.status != "running":
                    print(line, file=sys.stderr)
        except (KeyboardInterrupt, asyncio.CancelledError):
            await services.jobs.cancel(submission.request.id)
            raise
        if tty:
            print(file=sys.stderr)
        if final.status != "done":
            message = final.error.message if final.error else f"The download ended as {final.status}."
            print(f"mediabot: {message}", file=sys.stderr)
            return 1
        if final.playlist is not None:
            return await _print_items(services, submission.request.id, final)
        if submission.outcome == "cached" or final.cached_from:
            print("(from cache)", file=sys.stderr)
        if final.subtitles_missing:
            print(f"(no subtitles in {', '.join(final.subtitles_missing)})", file=sys.stderr)
        print(await _where(services, final))
        return 0


async def cmd_formats(settings: Settings, args: argparse.Namespace) -> int:
    """What a link offers, one format a line: the id to pass to `download --format`, then its label."""
    await db.upgrade(settings.database_url)
    async with services_for(settings, worker=False) as services:
        found = await services.jobs.formats(args.url)
    print(found.title or found.url)
    if found.playlist is not None:
        print(
            f"a playlist of {found.playlist.total or found.playlist.count} items: each item has its own formats"
        )
    for fmt in found.formats:
        print(f"  {fmt.format_id:<16} {fmt.label}")
    if found.subtitles:
        print(f"subtitles: {', '.join(found.subtitles)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediabot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="everything in one process (migrations, worker, web app, bots with tokens)")
    sub.add_parser("worker", help="a download worker on the shared Redis queue")
    sub.add_parser("web", help="the web app (REST, WebSocket, health, metrics)")
    sub.add_parser("telegram", help="the Telegram bot")
    sub.add_parser("discord", help="the Discord bot")
    p_db = sub.add_parser("db", help="database migrations")
    p_db.add_argument("action", choices=["upgrade", "downgrade"])
    p_db.add_argument("revision", nargs="?", default="head")
    p_dl = sub.add_parser("download", help="download one link through the job service and print where it is")
    p_dl.add_argument("url")
    p_dl.add_argument("--audio", action="store_true", help="audio only")
    p_dl.add_argument("--quality", default="best", help="best, or a height cap such as 1080, 720, 480")
    p_dl.add_argument("--format", help="a format id from `mediabot formats URL`")
    p_dl.add_argument("--subs", help="subtitle languages, comma-separated (en,de)")
    p_fmt = sub.add_parser(
        "formats", help="list the formats and subtitles a link offers, without downloading"
    )
    p_fmt.add_argument("url")
    p_key = sub.add_parser("apikey", help="create, list or revoke API keys for the web API")
    p_key.add_argument("action", choices=["create", "list", "revoke"])
    p_key.add_argument("name", nargs="?", help="the key's name (create, revoke)")
    for extra in EXTRA_COMMANDS:
        extra[0](sub)
    return parser


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Any]] = {
    "run": cmd_run,
    "worker": cmd_worker,
    "web": _role("web"),
    "telegram": _role("telegram"),
    "discord": _role("discord"),
    "db": cmd_db,
    "download": cmd_download,
    "formats": cmd_formats,
    "apikey": cmd_apikey,
}
# (add_parser, handler name, handler) hooks for commands the front ends bring (e.g. `apikey`).
EXTRA_COMMANDS: list[tuple[Callable[[Any], None], str, Callable[[Settings, argparse.Namespace], Any]]] = []
EXTRA_COMMANDS.append((ytdlp_cli.add_parser, "ytdlp", ytdlp_cli.cmd_ytdlp))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"mediabot: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, _secrets(settings))
    handler = COMMANDS.get(args.command) or {name: fn for _, name, fn in EXTRA_COMMANDS}[args.command]
    try:
        return asyncio.run(handler(settings, args))
    except KeyboardInterrupt:
        return 130
    except MediabotError as exc:
        print(f"mediabot: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        log.debug("fatal", exc_info=True)
        # The file it concerns, when there is one: the operator's own terminal, and the first thing to check.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"mediabot: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
