"""The JavaScript runtime yt-dlp solves YouTube's challenges with (Deno, from the `deno` package): where it
is, and whether it runs a script with the flags yt-dlp gives it (cached: starting Deno costs tens of ms)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path
from typing import Any

from core.media.parts import Part, _version_tuple
from core.media.ytdlp_facts import YtdlpFacts, ytdlp_facts

JS_CHECK_TIMEOUT_S = 10.0

# A JavaScript runtime check result is reused this long (and while the binary is unchanged): starting Deno
# costs tens of milliseconds, too much for every health poll.
JS_CHECK_TTL_S = 600.0


@functools.lru_cache(maxsize=8)
def find_js_runtime(setting: str = "auto") -> str | None:
    """The Deno binary yt-dlp is given: MEDIABOT_JS_RUNTIME's path as it is (checked by the doctor), else the
    one the `deno` package installed next to this Python, else `deno` on the PATH."""
    if setting and setting != "auto":
        return setting
    try:
        from deno import find_deno_bin

        return str(find_deno_bin())
    except (ImportError, OSError):
        pass
    # The package's own lookup failed (another layout): its binary sits in this environment's scripts folder.
    exe = "deno" + (sysconfig.get_config_var("EXE") or "")
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.prefix) / "bin")):
        candidate = Path(folder) / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("deno")


_JS_ADVICE_SET = (
    "Point MEDIABOT_JS_RUNTIME at a working Deno binary, or set it to auto to use the bundled one."
)

_JS_ADVICE_AUTO = "Reinstall the deno package (pip install --force-reinstall deno), or set MEDIABOT_JS_RUNTIME to a working Deno binary."


def check_js_runtime(
    setting: str, timeout_s: float = JS_CHECK_TIMEOUT_S, facts: YtdlpFacts | None = None
) -> Part:
    """Runs a one-line script through the Deno yt-dlp is given, with the flags yt-dlp runs it with."""
    facts = facts or ytdlp_facts()
    advice = _JS_ADVICE_AUTO if setting == "auto" else _JS_ADVICE_SET
    path = find_js_runtime(setting)

    def failed(detail: str, local: str | None = None, **kw: Any) -> Part:
        return Part(
            "js_runtime", "JavaScript runtime", "fail", detail=detail, advice=advice, local=local, **kw
        )

    if path is None:
        return failed("no Deno found (neither the deno package's binary nor deno on the PATH)")
    if not Path(path).is_file():
        return failed("the configured runtime does not exist", path)
    if not os.access(path, os.X_OK):
        return failed("the configured runtime is not executable", path)
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return failed(f"`deno --version` did not finish within {timeout_s:g} s", path)
    except OSError as exc:
        return failed(f"it does not start ({exc.strerror or type(exc).__name__})", path)
    match = re.search(r"^deno (\S+)", out.stdout, re.M)
    if out.returncode or not match:
        return failed(
            f"`--version` exited with code {out.returncode} and no Deno version",
            f"{path}: {_first_line(out.stderr or out.stdout)}",
        )
    version = match.group(1)
    least = facts.min_deno
    if _version_tuple(version) < least:
        return failed(
            f"Deno {version} is older than the {'.'.join(map(str, least))} yt-dlp supports",
            path,
            version=version,
        )
    started = time.perf_counter()
    try:
        run = subprocess.run(
            [path, "run", *facts.deno_flags, "-"],
            input="console.log(6 * 7)",
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return failed(f"a one-line script did not finish within {timeout_s:g} s", path, version=version)
    except OSError as exc:
        return failed(f"it does not start ({exc.strerror or type(exc).__name__})", path, version=version)
    took_ms = (time.perf_counter() - started) * 1000
    if run.returncode or run.stdout.strip() != "42":
        return failed(
            f"a one-line script exited with code {run.returncode}"
            + ("" if run.returncode else " without its answer"),
            f"{path}: {_first_line(run.stderr or run.stdout)}",
            version=version,
        )
    return Part(
        "js_runtime",
        "JavaScript runtime",
        "ok",
        version=f"deno {version}",
        detail=f"ran a script in {took_ms:.0f} ms",
        local=path,
    )


def _first_line(text: str) -> str:
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line[:200] or "(no output)"


_js_cache: dict[tuple[str, str | None], tuple[float, tuple[Any, ...], Part]] = {}
_js_lock = threading.Lock()


def _signature(path: str | None) -> tuple[Any, ...]:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return ()
    return (st.st_ino, st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode)) if st else ()


def cached_js_runtime(
    setting: str, timeout_s: float = JS_CHECK_TIMEOUT_S, facts: YtdlpFacts | None = None
) -> Part:
    """check_js_runtime, reused for JS_CHECK_TTL_S while the binary is the same file."""
    path = find_js_runtime(setting)
    key = (setting, path)
    signature = _signature(path)
    with _js_lock:
        found = _js_cache.get(key)
        if found and found[1] == signature and time.monotonic() - found[0] < JS_CHECK_TTL_S:
            return found[2]
    part = check_js_runtime(setting, timeout_s, facts)
    with _js_lock:
        _js_cache[key] = (time.monotonic(), signature, part)
    return part
