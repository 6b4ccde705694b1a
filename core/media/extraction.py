"""The extraction stack real sites need, located and checked: yt-dlp; yt-dlp-ejs, the solvers of YouTube's
JavaScript challenges; the JavaScript runtime that runs them (Deno, from the `deno` package); curl_cffi's
browser impersonation; the PO token provider (core.media.pot); the cookies folder.

`add_ytdlp_options` is what every yt-dlp run gets from here. Each `check_*` returns a `Part`: one line of
`mediabot doctor` and one entry of /health/detailed's `extraction`.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.media import pot
from core.media.cookies import refusal

if TYPE_CHECKING:
    from core.config import Settings

Status = Literal["ok", "warn", "fail", "off"]

JS_CHECK_TIMEOUT_S = 10.0
# A JavaScript runtime check result is reused this long (and while the binary is unchanged): starting Deno
# costs tens of milliseconds, too much for every health poll.
JS_CHECK_TTL_S = 600.0


@dataclass(frozen=True)
class Part:
    """One part of the stack: whether it works, in a line."""

    key: str  # the name in /health/detailed
    label: str  # the name in `mediabot doctor`
    status: Status  # ok; warn: works, with a caveat; fail: a required part is broken; off: not configured
    version: str | None = None
    detail: str = ""  # what was found; never a path, URL or program output (health readers see it)
    advice: str | None = None  # for warn and fail: one sentence saying what to do
    local: str | None = None  # path, URL, program output: the operator's terminal only

    def public(self) -> dict[str, Any]:
        found: dict[str, Any] = {"status": self.status, "version": self.version, "detail": self.detail}
        if self.advice:
            found["advice"] = self.advice
        return {k: v for k, v in found.items() if v not in (None, "")}


def _version_of(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[-.]", version))


def youtube_enabled(settings: Settings) -> bool:
    """Whether YouTube's extractors may run: only they need the JavaScript runtime and PO tokens."""
    return not settings.allowed_extractors or any(
        name.lower().startswith("youtube") for name in settings.allowed_extractors
    )


# ---- where the runtime is, and what yt-dlp is told ---------------------------------------------------------


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


def add_ytdlp_options(opts: dict[str, Any], settings: Settings) -> None:
    """The JavaScript runtime and PO token provider, added to a job's yt-dlp options."""
    runtime = find_js_runtime(settings.js_runtime)
    # Named with its path, so the Deno we ship runs whatever the PATH says (yt-dlp looks on the PATH
    # otherwise). A site that needs no JavaScript never starts it, so a broken runtime harms only YouTube.
    opts["js_runtimes"] = {"deno": {"path": runtime} if runtime else {}}
    args = pot.extractor_args(settings.pot_provider_url)
    if args:
        opts["extractor_args"] = {**opts.get("extractor_args", {}), **args}


# ---- what yt-dlp says about itself -------------------------------------------------------------------------


@dataclass(frozen=True)
class YtdlpFacts:
    """core.media.ytfacts's answer."""

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
    from a child process (core.media.ytfacts), so a front end never loads yt-dlp for a health check."""
    from core.ytdlp.versions import pointer_stamp

    key = (str(data_dir), pointer_stamp(data_dir) if data_dir is not None else None)
    with _facts_lock:
        found = _facts_cache.get(key)
        if found is not None:
            return found
        if "yt_dlp" in sys.modules:
            # Named by string on purpose: only a process that already runs yt-dlp gets here, and the import
            # graph (import-linter) must not show the front ends a path to it.
            raw = importlib.import_module("core.media.ytfacts").read()
        else:
            raw = _child_facts(data_dir)
        facts = YtdlpFacts.from_dict(raw)
        _facts_cache[key] = facts
        return facts


def _child_facts(data_dir: Path | None) -> dict[str, Any]:
    root = str(Path(__file__).resolve().parents[2])  # where the `core` package is
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    args = [sys.executable, "-m", "core.media.ytfacts", *([str(data_dir)] if data_dir is not None else [])]
    try:
        out = subprocess.run(
            args, capture_output=True, text=True, timeout=FACTS_TIMEOUT_S, env=env, stdin=subprocess.DEVNULL
        )
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {"version": None}


# ---- checks ------------------------------------------------------------------------------------------------


def check_ytdlp(facts: YtdlpFacts) -> Part:
    if facts.version is None:
        return Part(
            "yt_dlp",
            "yt-dlp",
            "fail",
            detail="not installed",
            advice="Install mediabot's dependencies again (pip install -e .): yt-dlp is missing.",
        )
    return Part("yt_dlp", "yt-dlp", "ok", version=facts.version)


def check_ejs(facts: YtdlpFacts) -> Part:
    version = _version_of("yt-dlp-ejs")
    if version is None:
        return Part(
            "yt_dlp_ejs",
            "yt-dlp-ejs",
            "fail",
            detail="not installed: YouTube's JavaScript challenges cannot be solved",
            advice="Install yt-dlp with its default extra (pip install 'yt-dlp[default]').",
        )
    wanted = facts.ejs_wanted
    if wanted is None:  # a yt-dlp without the solver framework: nothing to compare with
        return Part("yt_dlp_ejs", "yt-dlp-ejs", "ok", version=version)
    # yt-dlp uses the package's scripts only when major.minor match its own (EJSBaseJCP._get_script).
    if _version_tuple(version)[:2] != _version_tuple(wanted)[:2]:
        return Part(
            "yt_dlp_ejs",
            "yt-dlp-ejs",
            "fail",
            version=version,
            detail=f"this yt-dlp needs {wanted}",
            advice="Reinstall yt-dlp with its default extra so the two match (pip install -U 'yt-dlp[default]').",
        )
    return Part("yt_dlp_ejs", "yt-dlp-ejs", "ok", version=version, detail="the solvers this yt-dlp expects")


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


def check_impersonation(facts: YtdlpFacts) -> Part:
    version = _version_of("curl_cffi", "curl-cffi")
    targets = facts.impersonate_targets
    if not targets:
        return Part(
            "impersonation",
            "impersonation",
            "warn",
            version=version and f"curl_cffi {version}",
            detail="no browser to impersonate: sites that answer only to a browser will refuse downloads",
            advice="Install curl_cffi (pip install 'yt-dlp[curl-cffi]').",
        )
    clients = sorted({target.split("-", 1)[0].split(":", 1)[0] for target, _ in targets})
    return Part(
        "impersonation",
        "impersonation",
        "ok",
        version=version and f"curl_cffi {version}",
        detail=f"{len(targets)} targets ({', '.join(clients)})",
    )


async def check_pot_provider(url: str | None, timeout_s: float = 5.0) -> Part:
    label = "PO token provider"
    if not url:
        return Part("pot_provider", label, "off", detail="not configured (MEDIABOT_POT_PROVIDER_URL)")
    plugin = pot.plugin_version()
    if plugin is None:
        return Part(
            "pot_provider",
            label,
            "fail",
            detail="the bgutil-ytdlp-pot-provider plugin is not installed",
            advice="Install it (pip install bgutil-ytdlp-pot-provider), or unset MEDIABOT_POT_PROVIDER_URL.",
            local=url,
        )
    try:
        answer = await pot.ping(url, timeout_s)
    except pot.ProviderDown as exc:
        return Part(
            "pot_provider",
            label,
            "fail",
            detail=f"does not answer: {exc}",
            advice="Start the provider (docker compose up -d pot-provider) or correct MEDIABOT_POT_PROVIDER_URL; "
            "until then YouTube may refuse downloads that need a PO token.",
            local=url,
        )
    if not pot.same_major(answer.version, plugin):
        return Part(
            "pot_provider",
            label,
            "fail",
            version=answer.version,
            detail=f"server {answer.version or 'of unknown version'} and plugin {plugin} differ in major "
            "version, so the plugin will not use it",
            advice=f"Run the provider image of the plugin's version ({plugin}).",
            local=url,
        )
    if answer.version != plugin:
        return Part(
            "pot_provider",
            label,
            "warn",
            version=answer.version,
            detail=f"answers; the plugin is {plugin}",
            advice=f"Run the provider image of the plugin's version ({plugin}) to avoid surprises.",
            local=url,
        )
    return Part("pot_provider", label, "ok", version=answer.version, detail="answers", local=url)


def check_cookies(cookies_dir: Path | None) -> Part:
    label = "cookies"
    if cookies_dir is None:
        return Part("cookies", label, "off", detail="not configured (MEDIABOT_COOKIES_DIR)")
    if not cookies_dir.is_dir():
        return Part(
            "cookies",
            label,
            "fail",
            detail="the folder does not exist",
            advice="Create the folder, or unset MEDIABOT_COOKIES_DIR.",
            local=str(cookies_dir),
        )
    if not os.access(cookies_dir, os.R_OK | os.X_OK):
        return Part(
            "cookies",
            label,
            "fail",
            detail="the folder cannot be read by this user",
            advice="Give the user mediabot runs as read access to the folder (chown it, chmod 700).",
            local=str(cookies_dir),
        )
    sites: list[str] = []
    refused: list[str] = []
    for path in sorted(cookies_dir.glob("*.txt")):
        if not path.is_file():
            continue
        reason = refusal(path)
        if reason is None:
            sites.append(path.name[: -len(".txt")])
        else:
            refused.append(f"{path.name} ({reason})")
    detail = f"{len(sites)} site{'s' if len(sites) != 1 else ''}" + (f": {', '.join(sites)}" if sites else "")
    if refused:
        return Part(
            "cookies",
            label,
            "warn",
            detail=f"{detail}; refused: {', '.join(refused)}",
            advice="Make each refused file private to the user mediabot runs as (chown it, chmod 600).",
            local=str(cookies_dir),
        )
    if not sites:
        return Part(
            "cookies",
            label,
            "warn",
            detail="no files named by site (youtube.com.txt)",
            advice="Put a Netscape cookies.txt per site in the folder, or unset MEDIABOT_COOKIES_DIR.",
            local=str(cookies_dir),
        )
    return Part("cookies", label, "ok", detail=detail, local=str(cookies_dir))


def not_needed(part: Part) -> Part:
    """A YouTube-only part when YouTube is switched off: its trouble is a caveat, not a failure."""
    if part.status != "fail":
        return part
    return Part(
        part.key,
        part.label,
        "warn",
        version=part.version,
        detail=f"{part.detail} (only YouTube needs it, and MEDIABOT_ALLOWED_EXTRACTORS leaves it out)",
        advice=part.advice,
        local=part.local,
    )


async def check_stack(settings: Settings, *, fresh: bool = False, timeout_s: float = 5.0) -> list[Part]:
    """Every part of the extraction stack; the JavaScript runtime's check is cached unless `fresh`.
    `timeout_s` bounds the provider's ping."""

    def blocking() -> list[Part]:
        facts = ytdlp_facts(settings.data_dir)
        runtime = (
            check_js_runtime(settings.js_runtime, facts=facts)
            if fresh
            else cached_js_runtime(settings.js_runtime, facts=facts)
        )
        return [check_ytdlp(facts), check_ejs(facts), runtime, check_impersonation(facts)]

    parts = await asyncio.to_thread(blocking)
    parts.append(await check_pot_provider(settings.pot_provider_url, timeout_s))
    parts.append(await asyncio.to_thread(check_cookies, settings.cookies_dir))
    if not youtube_enabled(settings):
        parts = [not_needed(p) if p.key in ("yt_dlp_ejs", "js_runtime", "pot_provider") else p for p in parts]
    return parts
