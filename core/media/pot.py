"""PO tokens for YouTube from a bgutil provider server (MEDIABOT_POT_PROVIDER_URL).

The `bgutil-ytdlp-pot-provider` package is a yt-dlp plugin (found by yt-dlp in the `yt_dlp_plugins`
namespace, whatever `allowed_extractors` says, since it provides tokens rather than extracting sites). It asks
the server for a token when YouTube wants one; we only tell it where the server is, through the extractor
argument its README names (`youtubepot-bgutilhttp:base_url=...`), and check that the server answers on the
`/ping` route the plugin itself uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit

# yt-dlp's extractor-argument key of the plugin's HTTP provider ("youtubepot-" + its provider key).
EXTRACTOR_ARGS_KEY = "youtubepot-bgutilhttp"
PLUGIN_PACKAGE = "bgutil-ytdlp-pot-provider"


def extractor_args(url: str | None) -> dict[str, dict[str, list[str]]]:
    """yt-dlp's `extractor_args` that point the plugin at the server (values are lists, as yt-dlp wants)."""
    if not url:
        return {}
    return {EXTRACTOR_ARGS_KEY: {"base_url": [url]}}


def provider_address(url: str | None) -> tuple[str, int] | None:
    """(host, port) of the server: the one private address the plugin's own requests may reach."""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    return parts.hostname.lower(), parts.port or (443 if parts.scheme == "https" else 80)


def plugin_version() -> str | None:
    try:
        return metadata.version(PLUGIN_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Ping:
    version: str | None
    uptime_s: float | None


class ProviderDown(Exception):
    """The server did not answer its ping as a bgutil provider does; the message says how, in words."""


async def ping(url: str, timeout_s: float = 5.0) -> Ping:
    """GET {url}/ping, as the plugin does before asking for a token."""
    # Here, not at the top: the downloader imports this module, and a download child needs no aiohttp.
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session,
            session.get(f"{url}/ping", allow_redirects=False) as resp,
        ):
            if resp.status != 200:
                raise ProviderDown(f"it answered HTTP {resp.status} to /ping")
            body: Any = json.loads(await resp.read())
    except TimeoutError:
        raise ProviderDown(f"no answer within {timeout_s:g} s") from None
    except aiohttp.ClientConnectorError:
        raise ProviderDown("nothing listens there (connection refused or host not found)") from None
    except aiohttp.ClientError as exc:
        raise ProviderDown(f"the connection failed ({type(exc).__name__})") from None
    except ValueError:
        raise ProviderDown("its /ping answer is not JSON: is it a bgutil provider?") from None
    if not isinstance(body, dict):
        raise ProviderDown("its /ping answer is not a JSON object: is it a bgutil provider?")
    version = body.get("version")
    uptime = body.get("server_uptime")
    return Ping(
        version=str(version) if version else None,
        uptime_s=float(uptime) if isinstance(uptime, int | float) else None,
    )


def same_major(a: str | None, b: str | None) -> bool:
    """The plugin refuses a server of another major version (`_check_version` in the plugin)."""
    return bool(a and b and a.split(".", 1)[0] == b.split(".", 1)[0])
