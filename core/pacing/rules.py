"""MEDIABOT_SITE_LIMITS and MEDIABOT_PROXIES as frozen data.

`youtube=2/10s,instagram=1/30s,*=8`: at most 2 YouTube downloads at once across every worker and 10 s
between two starts; `*` is the rule of every site not named (each such site has a budget of its own).
A site with no rule and no `*` is not paced.

`http://p:3128,socks5://u:pw@h:1080` is a proxy pool for every site; `youtube=http://p1:3128|http://p2:3128`
one for a site (`*=` names the default pool; `youtube=` with nothing sends YouTube direct). A comma or a
bar inside a password must be percent-encoded.

Malformed text raises ValueError with one line naming the variable and the bad part, never a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

LIMITS_VAR = "MEDIABOT_SITE_LIMITS"
PROXIES_VAR = "MEDIABOT_PROXIES"
DEFAULT = "*"
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")

# A site is yt-dlp's extractor family ("youtube") or, for the generic extractor, a host ("example.com").
_SITE_RE = re.compile(r"^(\*|[a-z0-9][a-z0-9._:-]*)$")
_LIMIT_RE = re.compile(r"^(\d+)(?:/(\d+(?:\.\d+)?)(s|m))?$")
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True)
class SiteLimit:
    """At most `concurrency` downloads of the site at once, and `spacing_s` seconds between two starts."""

    concurrency: int
    spacing_s: float = 0.0

    def __str__(self) -> str:
        return f"{self.concurrency}/{self.spacing_s:g}s" if self.spacing_s else str(self.concurrency)


@dataclass(frozen=True)
class SiteLimits:
    by_site: dict[str, SiteLimit] = field(default_factory=dict)
    default: SiteLimit | None = None

    def for_site(self, site: str) -> SiteLimit | None:
        """The site's rule, else the `*` rule; None: not paced."""
        return self.by_site.get(site, self.default)

    def __str__(self) -> str:
        parts = [f"{site}={limit}" for site, limit in self.by_site.items()]
        if self.default is not None:
            parts.append(f"*={self.default}")
        return ",".join(parts)


def _entries(text: str) -> list[str]:
    return [entry.strip() for entry in text.split(",") if entry.strip()]


def _site(variable: str, entry: str, raw: str) -> str:
    site = raw.strip().lower()
    if not _SITE_RE.match(site):
        raise ValueError(
            f"{variable}: {entry!r}: {raw.strip()!r} is not a site name (youtube, example.com or *)"
        )
    return site


def parse_site_limits(text: str | None) -> SiteLimits:
    """`youtube=2/10s,instagram=1/30s,*=8` (N, N/Ss or N/Sm per site); empty text: nothing is paced."""
    by_site: dict[str, SiteLimit] = {}
    default: SiteLimit | None = None
    for entry in _entries(text or ""):
        if "=" not in entry:
            raise ValueError(
                f"{LIMITS_VAR}: {entry!r} is not site=N or site=N/<seconds>s (e.g. youtube=2/10s)"
            )
        name, _, value = entry.partition("=")
        site = _site(LIMITS_VAR, entry, name)
        match = _LIMIT_RE.match(value.strip().lower())
        if not match:
            raise ValueError(
                f"{LIMITS_VAR}: {entry!r}: {value.strip()!r} is not N, N/<seconds>s or N/<minutes>m "
                "(e.g. 2/10s)"
            )
        concurrency = int(match.group(1))
        if concurrency < 1:
            raise ValueError(f"{LIMITS_VAR}: {entry!r}: at least 1 download at a time")
        spacing = float(match.group(2) or 0) * (60 if match.group(3) == "m" else 1)
        limit = SiteLimit(concurrency, spacing)
        if site in by_site or (site == DEFAULT and default is not None):
            raise ValueError(f"{LIMITS_VAR}: {site!r} is given twice")
        if site == DEFAULT:
            default = limit
        else:
            by_site[site] = limit
    return SiteLimits(by_site, default)


def redact(url: str) -> str:
    """A proxy URL with its password as `***` (the user name stays: it tells two accounts apart)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return SplitResult(parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, "").geturl()


@dataclass(frozen=True)
class Proxy:
    """A proxy URL that never shows its password: str() and repr() are the redacted form."""

    url: str = field(repr=False)

    @property
    def label(self) -> str:
        return redact(self.url)

    def __str__(self) -> str:
        return self.label

    def __repr__(self) -> str:
        return f"Proxy({self.label!r})"


@dataclass(frozen=True)
class ProxyRules:
    by_site: dict[str, tuple[Proxy, ...]] = field(default_factory=dict)
    default: tuple[Proxy, ...] = ()

    def for_site(self, site: str) -> tuple[Proxy, ...]:
        """The site's pool, else the default one; empty: connect directly."""
        return self.by_site.get(site, self.default)

    def all(self) -> tuple[Proxy, ...]:
        seen: dict[str, Proxy] = {p.url: p for p in self.default}
        for pool in self.by_site.values():
            seen.update({p.url: p for p in pool})
        return tuple(seen.values())

    def __str__(self) -> str:
        parts = [f"{site}={'|'.join(p.label for p in pool)}" for site, pool in self.by_site.items()]
        if self.default:
            parts.append(f"*={'|'.join(p.label for p in self.default)}")
        return ",".join(parts)


def _proxy(site: str | None, raw: str) -> Proxy:
    """One proxy URL, checked; `site` only names the entry in the message."""
    url = raw.strip()
    shown = redact(url) if _SCHEME_RE.match(url) else url.split("@")[-1]  # no password in the message
    where = f"{PROXIES_VAR} ({site})" if site else PROXIES_VAR
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        raise ValueError(f"{where}: {shown!r} has a bad port") from None
    if parts.scheme.lower() not in PROXY_SCHEMES:
        raise ValueError(f"{where}: {shown!r} is not an http, https or socks5 URL (e.g. http://proxy:3128)")
    if not parts.hostname:
        raise ValueError(f"{where}: {shown!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{where}: {shown!r} has a path; a proxy is scheme://[user:password@]host:port")
    return Proxy(url.rstrip("/"))


def parse_proxies(text: str | None) -> ProxyRules:
    """`http://p:3128,socks5://u:pw@h:1080` (every site) or `youtube=http://p1:3128|http://p2:3128,*=...`."""
    by_site: dict[str, tuple[Proxy, ...]] = {}
    default: list[Proxy] = []
    explicit_default = False
    for entry in _entries(text or ""):
        if _SCHEME_RE.match(entry):
            default.extend(_proxy(None, raw) for raw in entry.split("|"))
            continue
        if "=" not in entry:
            shown = entry.split("@")[-1]
            raise ValueError(
                f"{PROXIES_VAR}: {shown!r} is neither a proxy URL (http://proxy:3128) nor site=URL|URL"
            )
        name, _, value = entry.partition("=")
        site = _site(PROXIES_VAR, name + "=...", name)
        pool = tuple(_proxy(site, raw) for raw in value.split("|") if raw.strip())
        if site == DEFAULT:
            if explicit_default:
                raise ValueError(f"{PROXIES_VAR}: '*' is given twice")
            explicit_default = True
            default.extend(pool)
        elif site in by_site:
            raise ValueError(f"{PROXIES_VAR}: {site!r} is given twice")
        else:
            by_site[site] = pool
    return ProxyRules(by_site, tuple(default))
