"""The extraction stack real sites need, located and checked: yt-dlp; yt-dlp-ejs, the solvers of YouTube's
JavaScript challenges; the JavaScript runtime that runs them (Deno, from the `deno` package); curl_cffi's
browser impersonation; the PO token provider (core.media.pot); the cookies folder.

`add_ytdlp_options` is what every yt-dlp run gets from here. Each `check_*` returns a `Part`: one line of
`mediabot doctor` and one entry of /health/detailed's `extraction`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.media import pot
from core.media.cookies import refusal
from core.media.jsruntime import cached_js_runtime, check_js_runtime, find_js_runtime
from core.media.parts import Part, _version_of, _version_tuple
from core.media.ytdlp_facts import YtdlpFacts, ytdlp_facts

if TYPE_CHECKING:
    from core.config import Settings


def youtube_enabled(settings: Settings) -> bool:
    """Whether YouTube's extractors may run: only they need the JavaScript runtime and PO tokens."""
    return not settings.allowed_extractors or any(
        name.lower().startswith("youtube") for name in settings.allowed_extractors
    )


def add_ytdlp_options(opts: dict[str, Any], settings: Settings) -> None:
    """The JavaScript runtime and PO token provider, added to a job's yt-dlp options."""
    runtime = find_js_runtime(settings.js_runtime)
    # Named with its path, so the Deno we ship runs whatever the PATH says (yt-dlp looks on the PATH
    # otherwise). A site that needs no JavaScript never starts it, so a broken runtime harms only YouTube.
    opts["js_runtimes"] = {"deno": {"path": runtime} if runtime else {}}
    args = pot.extractor_args(settings.pot_provider_url)
    if args:
        opts["extractor_args"] = {**opts.get("extractor_args", {}), **args}


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
