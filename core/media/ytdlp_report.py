"""What the yt-dlp this process loads says about itself: its version, the yt-dlp-ejs it expects, the Deno it
needs and the flags it runs Deno with, the browsers it can impersonate.

Front ends never load yt-dlp, yet /health/detailed reports these: they run this module as a child process
(`python -m core.media.ytdlp_report DATA_DIR`, see core.media.extraction.ytdlp_facts), which loads the yt-dlp
DATA_DIR's pointer names (core.ytdlp.versions), the one the workers run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The flags yt-dlp runs Deno with for the solvers of the yt-dlp-ejs package (DenoJCP in yt-dlp), should its
# private list move: no network, no prompts, no config or lock files, no npm.
DENO_FLAGS = (
    "--ext=js",
    "--no-code-cache",
    "--no-prompt",
    "--no-remote",
    "--no-lock",
    "--node-modules-dir=none",
    "--no-config",
    "--no-npm",
    "--cached-only",
)


class _Silent:
    def debug(self, msg: str) -> None: ...

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None: ...

    def error(self, msg: str) -> None: ...


def read() -> dict[str, Any]:
    """The facts, from the yt-dlp this process imports (JSON-ready); version None when yt-dlp is missing."""
    try:
        import yt_dlp
        from yt_dlp.version import __version__
    except ImportError:
        return {"version": None, "ejs_wanted": None, "min_deno": [2, 0, 0], "deno_flags": list(DENO_FLAGS),
                "impersonate_targets": []}  # fmt: skip
    try:
        from yt_dlp.extractor.youtube.jsc._builtin.vendor import VERSION as ejs_wanted
    except ImportError:  # a yt-dlp without the solver framework: nothing to compare with
        ejs_wanted = None
    try:
        from yt_dlp.utils._jsruntime import DenoJsRuntime

        min_deno = list(DenoJsRuntime.MIN_SUPPORTED_VERSION)
    except (ImportError, AttributeError):
        min_deno = [2, 0, 0]
    try:
        from yt_dlp.extractor.youtube.jsc._builtin.deno import DenoJCP

        flags = [*DenoJCP._DENO_BASE_OPTIONS, "--no-npm", "--cached-only"]
    except (ImportError, AttributeError):
        flags = list(DENO_FLAGS)
    # (target, handler) pairs as yt-dlp lists them (`yt-dlp --list-impersonate-targets`).
    with yt_dlp.YoutubeDL({"quiet": True, "no_warnings": True, "logger": _Silent()}) as ydl:
        targets = [[str(target), handler] for target, handler in ydl._get_available_impersonate_targets()]
    return {"version": __version__, "ejs_wanted": ejs_wanted, "min_deno": min_deno, "deno_flags": flags,
            "impersonate_targets": targets}  # fmt: skip


def main(argv: list[str]) -> int:
    if argv:
        from core.ytdlp.versions import activate

        activate(Path(argv[0]))
    print(json.dumps(read()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
