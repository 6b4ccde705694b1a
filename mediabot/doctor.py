"""`mediabot doctor`: one line per part with its version and whether it works; exit 1 when a required part
does not, with one sentence per failure saying what to do."""

from __future__ import annotations

import argparse
from typing import Any

from core.config import Settings
from core.doctor import diagnose, pacing_detail, read_pacing
from core.media.parts import Part

MARKS = {"ok": "ok", "warn": "warn", "fail": "FAIL", "off": "off"}


def add_parser(sub: Any) -> None:
    sub.add_parser(
        "doctor",
        help="check yt-dlp, its JavaScript runtime, impersonation, ffmpeg, the PO token provider, "
        "database, queue, storage and cookies; exit 1 when a required part fails",
    )


def line(part: Part) -> str:
    found = ": ".join(x for x in (part.version, part.detail) if x)
    where = f"  ({part.local})" if part.local else ""
    return f"{MARKS[part.status]:<5} {part.label:<19} {found}{where}".rstrip()


async def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    parts = await diagnose(settings)
    for part in parts:
        print(line(part))
    # Per site and identity: requests, successes, refusals, rests, set-aside cookies files (issue 23).
    for detail in pacing_detail(await read_pacing(settings)):
        print(f"      {'':<19} {detail}")
    failures = [p for p in parts if p.status == "fail"]
    warnings = [p for p in parts if p.status == "warn" and p.advice]
    if warnings:
        print()
        for part in warnings:
            print(f"{part.label}: {part.advice}")
    if failures:
        print()
        print(f"{len(failures)} required part{'s' if len(failures) > 1 else ''} not working:")
        for part in failures:
            print(f"{part.label}: {part.advice}")
        return 1
    print()
    print("Everything required works.")
    return 0


COMMAND = (add_parser, "doctor", cmd_doctor)
