"""Which site a link counts against: yt-dlp's extractor family, or the host for generic pages.

A family is the yt-dlp module the extractor lives in (`youtube` for youtube, youtube:tab, YoutubeYtBe...;
`instagram` for Instagram, InstagramIOS, instagram:story...), because a site counts every request of ours,
whatever page kind it was: `YoutubeTab` lower-cased would be a budget of its own. Links only the generic
extractors read count per host (`example.com`, `www.` dropped).

yt-dlp is imported inside the functions (its extractor list costs ~0.4 s once): call them off the event
loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

# yt-dlp modules whose extractors read any page rather than one site's.
GENERIC_FAMILIES = frozenset({"generic", "genericembeds", "commonprotocols", "commonmistakes"})
_lock = threading.Lock()


def host_site(url: str) -> str:
    """The host a generic link counts against: lower-case, without `www.` and the port."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.") or "unknown"


def family_of(extractor: Any) -> str:
    """The yt-dlp module an extractor class lives in ("youtube"); lazy classes name it in `_module`."""
    module = getattr(extractor, "_module", None) or extractor.__module__
    if module.startswith("yt_dlp.extractor."):
        return module.removeprefix("yt_dlp.extractor.").split(".")[0]
    return module.rsplit(".", 1)[-1]  # a plugin: yt_dlp_plugins.extractor.<name>


@functools.cache
def _families() -> dict[str, str]:
    """Extractor key and IE_NAME (lower-case) -> family."""
    from yt_dlp.extractor import gen_extractor_classes

    names: dict[str, str] = {}
    for ie in gen_extractor_classes():
        family = family_of(ie)
        names.setdefault(ie.ie_key().lower(), family)
        names.setdefault(str(ie.IE_NAME).lower(), family)
    return names


def site_for(extractor: str | None, url: str) -> str:
    """The site of a link once its extractor is known: `info["extractor_key"]` or `info["extractor"]`
    ("YoutubeTab", "youtube:tab" -> "youtube"); None or a generic one: the link's host."""
    if not extractor:
        return host_site(url)
    name = extractor.lower()
    with _lock:
        family = _families().get(name)
    if family is None:
        family = name.split(":", 1)[0]
    return host_site(url) if family in GENERIC_FAMILIES or family == "html5" else family


@functools.cache
def _candidates(allowed: tuple[str, ...]) -> tuple[Any, ...]:
    """yt-dlp's extractors in its own order of trying them, only the allowed ones when a list is set."""
    from yt_dlp.extractor import gen_extractor_classes

    classes = tuple(gen_extractor_classes())
    if not allowed:
        return classes
    wanted = {name.lower() for name in allowed}
    if "generic" in wanted:
        wanted.add("html5")  # as core.downloader.allowed_extractors: "generic" means any other page
    return tuple(ie for ie in classes if ie.ie_key().lower() in wanted or str(ie.IE_NAME).lower() in wanted)


def extractor_for(url: str, allowed: Sequence[str] = ()) -> str | None:
    """The key of the first extractor yt-dlp would try for the link (no network), None when no allowed one
    claims it. `allowed` is MEDIABOT_ALLOWED_EXTRACTORS (empty: all)."""
    return _extractor_for(url, tuple(allowed))


@functools.lru_cache(maxsize=4096)  # a generic link tries every pattern: ~3 ms; a link asked again, ~0
def _extractor_for(url: str, allowed: tuple[str, ...]) -> str | None:
    with _lock:  # the cache is filled once; suitable() compiles its pattern on first use
        for ie in _candidates(allowed):
            if ie.suitable(url):
                return str(ie.ie_key())
    return None


def site_of_url(url: str, allowed: Sequence[str] = ()) -> str:
    """The site a link counts against before it is extracted: what pacing decides on."""
    return site_for(extractor_for(url, allowed), url)


# How people write the names of sites whose yt-dlp family name is not (lower-case, run together).
_DISPLAY = {
    "youtube": "YouTube",
    "tiktok": "TikTok",
    "soundcloud": "SoundCloud",
    "twitter": "X",
    "bilibili": "Bilibili",
    "dailymotion": "Dailymotion",
    "vk": "VK",
    "bandcamp": "Bandcamp",
}


def display_name(site: str) -> str:
    """A site's name for people ("Waiting for YouTube"): a host as it is, a family capitalised or as the
    site writes it."""
    if "." in site or ":" in site or site.replace(".", "").isdigit():
        return site
    return _DISPLAY.get(site, site[:1].upper() + site[1:])
