"""What the yt-dlp the workers run says about itself (core.media.ytdlp_report), read once per version."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class YtdlpFacts:
    """core.media.ytdlp_report's answer."""

    version: str | None
    ejs_wanted: str | None
    min_deno: tuple[int, ...]
    deno_flags: tuple[str, ...]
    impersonate_targets: tuple[tuple[str, str], ...]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> YtdlpFacts:
        return cls(
            version=raw.get("version"),
            ejs_wanted=raw.get("ejs_wanted"),
            min_deno=tuple(raw.get("min_deno") or (2, 0, 0)),
            deno_flags=tuple(raw.get("deno_flags") or ()),
            impersonate_targets=tuple((str(t), str(h)) for t, h in raw.get("impersonate_targets") or ()),
        )


FACTS_TIMEOUT_S = 60.0
_facts_cache: dict[tuple[str, tuple[int, int] | None], YtdlpFacts] = {}
_facts_lock = threading.Lock()


def ytdlp_facts(data_dir: Path | None = None) -> YtdlpFacts:
    """The facts of the yt-dlp the workers run, once per current version (blocking: call from a thread).

    A process that has yt-dlp loaded already (a worker, `mediabot run`) reads its own; any other reads them
    from a child process (core.media.ytdlp_report), so a front end never loads yt-dlp for a health check."""
    from core.ytdlp.versions import pointer_stamp

    key = (str(data_dir), pointer_stamp(data_dir) if data_dir is not None else None)
    with _facts_lock:
        found = _facts_cache.get(key)
        if found is not None:
            return found
        if "yt_dlp" in sys.modules:
            # Named by string on purpose: only a process that already runs yt-dlp gets here, and the import
            # graph (import-linter) must not show the front ends a path to it.
            raw = importlib.import_module("core.media.ytdlp_report").read()
        else:
            raw = _child_facts(data_dir)
        facts = YtdlpFacts.from_dict(raw)
        _facts_cache[key] = facts
        return facts


def _child_facts(data_dir: Path | None) -> dict[str, Any]:
    root = str(Path(__file__).resolve().parents[2])  # where the `core` package is
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    args = [
        sys.executable,
        "-m",
        "core.media.ytdlp_report",
        *([str(data_dir)] if data_dir is not None else []),
    ]
    try:
        out = subprocess.run(
            args, capture_output=True, text=True, timeout=FACTS_TIMEOUT_S, env=env, stdin=subprocess.DEVNULL
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {"version": None}
