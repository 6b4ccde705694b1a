"""`mediabot ytdlp status | update [--version V] [--find-links DIR | --index-url URL] | rollback`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core.config import Settings
from core.ytdlp.install import Source
from core.ytdlp.updates import rollback, status, update


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "ytdlp",
        help="yt-dlp versions: status, update (proven on the canary links first), rollback",
        description="Install a newer yt-dlp without a rebuild. An update becomes current only after every "
        "link in MEDIABOT_CANARY_URLS was probed and downloaded with it; workers then restart into it.",
    )
    p.add_argument("action", choices=["status", "update", "rollback"])
    p.add_argument("--version", help="the release to install (default: the newest one offered)")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--find-links", type=Path, metavar="DIR", help="install from this folder of wheels only"
    )
    where.add_argument(
        "--index-url", metavar="URL", help="install from this package index (PEP 503 simple URL)"
    )


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


async def cmd_ytdlp(settings: Settings, args: argparse.Namespace) -> int:
    if args.action != "update" and (args.version or args.find_links or args.index_url):
        print(
            "mediabot: --version, --find-links and --index-url go with `mediabot ytdlp update`",
            file=sys.stderr,
        )
        return 2
    if args.action == "status":
        for line in status(settings):
            print(line)
        return 0
    if args.action == "rollback":
        print(rollback(settings))
        return 0
    if args.find_links is not None and not args.find_links.is_dir():
        print(f"mediabot: {args.find_links} is not a folder.", file=sys.stderr)
        return 2
    source = Source(
        find_links=args.find_links.resolve() if args.find_links else None,
        index_url=args.index_url or settings.ytdlp_index_url,
    )
    outcome = await update(settings, version=args.version, source=source, report=_say)
    print(outcome.message)
    return 0
