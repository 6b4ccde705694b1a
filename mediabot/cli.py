"""`mediabot`: run everything in one process, or one role per process when Redis is set."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any
from urllib.parse import unquote, urlsplit

from core.apikeys import ApiKeyService
from core.bootstrap import Services
from core.config import Settings, SettingsError, load_settings
from core.db import migrate
from core.db.session import create_engine, session_factory
from core.errors import MediabotError
from core.i18n import _, negotiate, set_locale, terminal_languages
from core.logs import setup_logging
from core.ytdlp.upkeep import ytdlp_upkeep
from mediabot import doctor, ytdlp_cli
from mediabot.download import add_download_parser, cmd_download, error_lines
from mediabot.hosting import SchemaNotReady, Shutdown, load_worker, prepare_database, services_for
from worker.memory import trim_memory

log = logging.getLogger("mediabot")

Component = Callable[[Services], AbstractAsyncContextManager[Any]]


def _secrets(settings: Settings) -> list[str]:
    found = [
        str(getattr(settings, name, "") or "")
        for name in ("secret_key", "webhook_secret", "telegram_token", "discord_token")
    ]
    # Proxy passwords (MEDIABOT_PROXIES): never in a log line, whoever writes it (yt-dlp, urllib...).
    from core.pacing.rules import parse_proxies

    for proxy in parse_proxies(settings.proxies).all():
        password = urlsplit(proxy.url).password
        if password:
            found += [password, unquote(password)]
    return found


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


async def _serve(
    settings: Settings,
    *,
    worker: bool,
    only: str | None,
    on_ready: Callable[[Services], Awaitable[None]] | None = None,
    shutdown: Shutdown | None = None,
    prepare: bool = True,
) -> int:
    components = front_ends(settings, only)
    if only and not components:
        # Exit 0: nothing failed, so a supervisor that restarts on failure (compose: `restart: on-failure`)
        # leaves it stopped instead of starting it again and again.
        print(
            f"mediabot: nothing to run for '{only}': set MEDIABOT_{only.upper()}_TOKEN to run it.",
            file=sys.stderr,
        )
        return 0
    shutdown = shutdown or Shutdown(settings, downloads=worker).install()
    if prepare:
        await prepare_database(settings)
    if worker:
        await load_worker()
    async with (
        ytdlp_upkeep(settings, shutdown.requested, enabled=worker),
        # A process that also serves people imports yt-dlp on its first job: idle, it stays ~45 MB lighter.
        services_for(settings, worker=worker, hurry=shutdown.hurried, warm=False) as services,
        AsyncExitStack() as stack,
    ):
        for component in components:
            if shutdown.requested.is_set():
                break
            await stack.enter_async_context(component(services))
        if on_ready is not None and not shutdown.requested.is_set():
            await on_ready(services)
        # Start-up's garbage (module loading, migrations' check, the first connections) handed back to the
        # system, so an idle process shows what it holds, not what it passed through (~1.5 MB).
        gc.collect()
        await asyncio.to_thread(trim_memory)
        await shutdown.wait()
    return 0


async def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    shutdown = Shutdown(settings, downloads=True).install()
    await migrate.upgrade_if_needed(settings.database_url)
    log.info(
        "mediabot running: database %s, queue %s, storage %s",
        "SQLite" if settings.is_sqlite else "PostgreSQL",
        "Redis" if settings.redis_url else "in-process",
        settings.storage,
    )
    return await _serve(settings, worker=True, only=None, on_ready=_welcome, shutdown=shutdown, prepare=False)


async def _welcome(services: Services) -> None:
    """Where to go: the page's address; on a first run with no API key, a new key and how to use it,
    so the page and the API work at once; on later runs, how to get another key."""
    url = services.settings.public_url
    key = await _first_key(services)
    if key is None:
        print(
            f"Open {url}/ in your browser (it asks for an API key; a new one: `mediabot apikey create NAME`).\n"
            f"API docs: {url}/api/docs",
            flush=True,
        )
        return
    name, plaintext = key
    print(
        f"No API key existed, so one was created (name {name!r}; list keys with `mediabot apikey list`):\n"
        f"  {plaintext}\n"
        f"Open {url}/ in your browser and paste the key there.\n"
        "Or from a shell (an example: put a link to a real video in place of example.com's):\n"
        f"  curl -H 'Authorization: Bearer {plaintext}' -H 'Content-Type: application/json' \\\n"
        f'       -d \'{{"url": "https://example.com/video"}}\' {url}/api/v1/jobs\n'
        f"API docs: {url}/api/docs",
        flush=True,
    )


async def _first_key(services: Services) -> tuple[str, str] | None:
    """A first run with no API key: create one named `default` (its name and plaintext); None when a key
    exists already."""
    if await services.keys.count_active():
        return None
    for name in ("default", *(f"default-{n}" for n in range(2, 10))):
        try:
            _, key = await services.keys.create(name)
        except MediabotError:
            if await services.keys.count_active():
                return None  # another process created one at the same moment
            continue  # a revoked key holds the name
        return name, key
    return None


async def cmd_apikey(settings: Settings, args: argparse.Namespace) -> int:
    """Create, list or revoke API keys. Only a hash is stored: a new key is shown once, as the last line."""
    await migrate.upgrade_if_needed(settings.database_url)
    engine = create_engine(settings.database_url)
    try:
        keys = ApiKeyService(session_factory(engine), settings)
        if args.action == "create":
            if not args.name:
                print("mediabot: `mediabot apikey create NAME`", file=sys.stderr)
                return 2
            info, key = await keys.create(args.name, admin=args.admin)
            if info.is_admin:
                done = _("Created admin API key {name}. Store it now: it cannot be shown again.")
            else:
                done = _("Created API key {name}. Store it now: it cannot be shown again.")
            print(done.format(name=repr(info.name)))
            print(key)
        elif args.action == "list":
            rows = await keys.list()
            if not rows:
                print(_("No API keys. Create one with `mediabot apikey create NAME`."))
            for info in rows:
                if info.revoked_at:
                    state = _("revoked {when}").format(when=f"{info.revoked_at:%Y-%m-%d %H:%M}")
                else:
                    state = _("active")
                # i18n: marks an admin key in `mediabot apikey list`
                state += "  " + _("admin") if info.is_admin else ""
                used = f"{info.last_used_at:%Y-%m-%d %H:%M}" if info.last_used_at else _("never")
                created = _("created {when}").format(when=f"{info.created_at:%Y-%m-%d %H:%M}")
                last = _("last used {when}").format(when=used)
                print(f"{info.name:<24} {info.prefix}...  {created}  {last}  {state}")
        else:
            if not args.name:
                print("mediabot: `mediabot apikey revoke NAME`", file=sys.stderr)
                return 2
            info = await keys.revoke(args.name)
            print(_("Revoked API key {name}.").format(name=repr(info.name)))
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
    shutdown = Shutdown(settings, downloads=True).install()
    await prepare_database(settings)
    await load_worker()
    async with (
        ytdlp_upkeep(settings, shutdown.requested),
        services_for(settings, worker=True, hurry=shutdown.hurried),
    ):
        await shutdown.wait()
    return 0


def _role(name: str) -> Callable[[Settings, argparse.Namespace], Any]:
    async def cmd(settings: Settings, args: argparse.Namespace) -> int:
        # Without Redis there is no shared queue, so this process must run the downloads itself.
        return await _serve(settings, worker=not settings.redis_url, only=name)

    return cmd


async def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "upgrade":
        await migrate.upgrade(settings.database_url, args.revision)
    else:
        await migrate.downgrade(settings.database_url, args.revision)
    print(f"database {args.action}d to {args.revision}")
    return 0


async def cmd_formats(settings: Settings, args: argparse.Namespace) -> int:
    """What a link offers, as a table under a header row: the id to pass to `download --format`, the picture
    (or "audio only"), the codecs and the size ("~" when estimated)."""
    from core.words import human_size

    await migrate.upgrade_if_needed(settings.database_url)
    async with services_for(settings, worker=False) as services:
        found = await services.jobs.formats(args.url)
    print(found.title or found.url)
    if found.playlist is not None:
        print(
            f"a playlist of {found.playlist.total or found.playlist.count} items: each item has its own formats"
        )
    rows = [("ID", "RESOLUTION", "CODECS", "SIZE")]
    for fmt in found.formats:
        if fmt.kind == "audio":
            picture = "audio only"
        elif fmt.width and fmt.height:
            picture = f"{fmt.width}x{fmt.height}"
        else:
            picture = f"{fmt.height}p" if fmt.height else "video"
        codecs = fmt.codecs or fmt.ext or "?"
        if fmt.kind == "video" and not fmt.has_audio:
            codecs += ", video only"
        size = "?"
        if fmt.filesize is not None:
            size = ("~" if fmt.filesize_estimated else "") + human_size(fmt.filesize)
        rows.append((fmt.format_id, picture, codecs, size))
    if found.formats:
        w = [max(len(row[i]) for row in rows) for i in range(3)]
        for ident, picture, codecs, size in rows:
            print(f"  {ident:<{w[0]}}  {picture:<{w[1]}}  {codecs:<{w[2]}}  {size}")
    if found.subtitles:
        print(f"subtitles: {', '.join(found.subtitles)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mediabot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="everything in one process (migrations, worker, web app, bots with tokens)")
    sub.add_parser("worker", help="a download worker on the shared Redis queue")
    sub.add_parser("web", help="the web app: the page, the REST/WebSocket API and its docs, health, metrics")
    sub.add_parser("telegram", help="the Telegram bot")
    sub.add_parser("discord", help="the Discord bot")
    p_db = sub.add_parser("db", help="database migrations")
    p_db.add_argument("action", choices=["upgrade", "downgrade"])
    p_db.add_argument("revision", nargs="?", default="head")
    add_download_parser(sub)
    p_fmt = sub.add_parser(
        "formats", help="list the formats and subtitles a link offers, without downloading"
    )
    p_fmt.add_argument("url")
    p_key = sub.add_parser("apikey", help="create, list or revoke API keys for the web API")
    p_key.add_argument("action", choices=["create", "list", "revoke"])
    p_key.add_argument("name", nargs="?", help="the key's name (create, revoke)")
    p_key.add_argument(
        "--admin",
        action="store_true",
        help="create: the key may also use the operator's /api/v1/admin/ endpoints",
    )
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
EXTRA_COMMANDS.append(doctor.COMMAND)
EXTRA_COMMANDS.append((ytdlp_cli.add_parser, "ytdlp", ytdlp_cli.cmd_ytdlp))


def _port_in_use(settings: Settings, text: str) -> str:
    """aiohttp says only "error while attempting to bind on address (...)": name the setting that moves it."""
    ports = [(settings.port, "MEDIABOT_PORT", "the web page and API")]
    if settings.telegram_webhook_url:
        ports.append((settings.telegram_webhook_port, "MEDIABOT_TELEGRAM_WEBHOOK_PORT", "Telegram's webhook"))
    for port, name, what in ports:
        if f", {port})" in text:
            return (
                f"port {port} is already in use (another mediabot running?). Stop that program, or set {name} "
                f"to another port for {what}."
            )
    return f"{text}. Stop the program using that port or choose another one."


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"mediabot: {exc}", file=sys.stderr)
        return 2
    level = settings.log_level
    if (
        args.command == "download"
        and not args.verbose
        and logging.getLevelName(level.upper()) < logging.WARNING
    ):
        # A downloader's terminal shows its progress bar; log lines only when something is wrong (or -v).
        level = "WARNING"
    setup_logging(level, _secrets(settings))
    # What the CLI tells a person, in the terminal's language (LANGUAGE, LC_ALL, LC_MESSAGES, LANG); the
    # event loop below runs in a copy of this context, so everything it prints speaks it too.
    set_locale(negotiate(*terminal_languages()))
    handler = COMMANDS.get(args.command) or {name: fn for _, name, fn in EXTRA_COMMANDS}[args.command]
    try:
        return asyncio.run(handler(settings, args))
    except KeyboardInterrupt:
        return 130
    except SchemaNotReady as exc:
        print(f"mediabot: {exc}", file=sys.stderr)
        return 2
    except MediabotError as exc:
        print(error_lines(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        log.debug("fatal", exc_info=True)
        if exc.errno == errno.EADDRINUSE:
            print(f"mediabot: {_port_in_use(settings, str(exc))}", file=sys.stderr)
            return 1
        # The file it concerns, when there is one: the operator's own terminal, and the first thing to check.
        where = f": {exc.filename}" if exc.filename else ""
        print(f"mediabot: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
