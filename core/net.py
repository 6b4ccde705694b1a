"""Links: finding them in text, normalising them into cache keys, and refusing private addresses."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
import socket
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from core.errors import InvalidUrl, PrivateAddress
from core.i18n import N_, _

log = logging.getLogger(__name__)

_URL_RE = re.compile(r"""(?i)\b(https?://[^\s<>"'`]+)""")
_TRAILING = ".,;:!?)]}>'\""
_SCHEME_RE = re.compile(r"(?i)^\s*([a-z][a-z0-9+.-]*):")
TRACKING_PARAMS = {
    "fbclid",
    "gclid",
    "dclid",
    "msclkid",
    "igshid",
    "si",
    "mc_cid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "ref_src",
}
DEFAULT_PORTS = {"http": 80, "https": 443}


def extract_urls(text: str) -> list[str]:
    """Every http(s) link in a message, in order, without duplicates."""
    found: list[str] = []
    for match in _URL_RE.finditer(text or ""):
        url = match.group(1)
        # A closing bracket belongs to the link only when the link opened one.
        while url and url[-1] in _TRAILING and not (url[-1] == ")" and url.count("(") >= url.count(")")):
            url = url[:-1]
        if url not in found:
            found.append(url)
    return found


def extract_url(text: str) -> str:
    """The first link in `text`, validated; raises InvalidUrl with a reason a person understands."""
    text = (text or "").strip()
    if not text:
        raise InvalidUrl(N_("Send a link to a video or a song."))
    if len(text) > 4096:
        raise InvalidUrl(N_("That message is too long to be a link."))
    urls = extract_urls(text)
    if not urls:
        scheme = _SCHEME_RE.match(text)
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            # Named as it was written: "file://" for file links, "javascript:" (no slashes) for script ones.
            named = scheme.group(1).lower() + ("://" if text[scheme.end() :].startswith("//") else ":")
            raise InvalidUrl(
                _("Only http:// and https:// links are supported, not {scheme}.").format(scheme=named)
            )
        raise InvalidUrl()
    url = urls[0]
    parts = urlsplit(url)
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidUrl(N_("That link has an invalid port.")) from None
    if not host or "." not in host.strip(".") and not _is_ip(host) and host != "localhost":
        raise InvalidUrl(N_("That link has no valid host name."))
    if len(url) > 2048:
        raise InvalidUrl(N_("That link is too long."))
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalize_url(url: str) -> str:
    """The cache key of a link: lower-case scheme and host, no default port, fragment or tracking parameters."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS
    ]
    path = parts.path or "/"
    return urlunsplit((scheme, netloc, path, urlencode(query, doseq=True), ""))


# IPv6 ranges that carry an IPv4 address: judged by the address they carry.
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0/96")
# Deprecated or local-use ranges no public media host uses: never fetched (without an explicit allowance).
_NEVER_V6 = tuple(
    ipaddress.ip_network(net)
    for net in (
        "2001::/32",  # Teredo: the client address inside is obfuscated, and the tunnel may end anywhere
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): translates into the operator's own networks
        "::/96",  # IPv4-compatible (deprecated by RFC 4291), including :: and ::1
        "fec0::/10",  # site-local (deprecated by RFC 3879), still routed inside some networks
    )
)


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a mapped, translated, 6to4 or NAT64 address reaches."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr in _SIX_TO_FOUR:
        return addr.sixtofour
    if addr in _NAT64 or addr in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def ip_forbidden(ip: str) -> bool:
    """True for loopback, private, link-local, multicast, reserved and other non-public addresses, and for
    IPv6 addresses that reach one of those through the IPv4 address they carry (6to4, NAT64, mapped)."""
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        if any(addr in net for net in _NEVER_V6):
            return True
        addr = _embedded_ipv4(addr) or addr
    return not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified


# `localhost` is a name for the loopback addresses: an allowance for one of them allows the others, so an
# operator who allowed localhost:8000 can paste http://127.0.0.1:8000/ links, and the other way round.
_LOOPBACK = "localhost"
_LOOPBACK_SPELLINGS = {"localhost", "127.0.0.1", "::1"}
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")


def _canonical_host(host: str) -> str:
    host = host.strip().lower().strip("[]").rstrip(".")
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        host = str(addr)
    return _LOOPBACK if host in _LOOPBACK_SPELLINGS else host


def host_port(host: str, port: int | None) -> str:
    """`host:port` as an operator writes it (IPv6 addresses in brackets)."""
    host = host.strip("[]")
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def parse_allowed_host(entry: str) -> tuple[str, int | None]:
    """One MEDIABOT_ALLOWED_PRIVATE_HOSTS entry as (host, port or None for any port); ValueError, in the
    operator's words, for anything else (a scheme, a path, a bad port, no host)."""
    text = entry.strip()
    if "://" in text:
        raise ValueError(f"{entry!r} is not host or host:port: leave out the {text.split('://', 1)[0]}://")
    if any(c in text for c in "/?#@") or any(c.isspace() for c in text):
        raise ValueError(f"{entry!r} is not host or host:port: leave out any path, query or user name")
    try:
        # A bare IPv6 address (::1, fd00::5) names a host without a port.
        return str(ipaddress.IPv6Address(text.split("%", 1)[0])), None
    except ValueError:
        pass
    parts = urlsplit("//" + text)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port == -1 or port == 0 or text.endswith(":"):
        raise ValueError(f"{entry!r} has an invalid port: use a number from 1 to 65535")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise ValueError(f"{entry!r} has no host name")
    if not _is_ip(host) and not _HOST_NAME.fullmatch(host):
        raise ValueError(f"{entry!r} is not a valid host name")
    return host, port


def allow_hint(host: str, port: int | None) -> str:
    """What an operator sets to let mediabot fetch from a private host it refused."""
    entry = host_port(host, port)
    return (
        f"To allow links to {entry}, set MEDIABOT_ALLOWED_PRIVATE_HOSTS={entry} "
        "(a comma-separated list: keep any hosts already in it)."
    )


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts may be fetched. Applied to the submitted link and again to every connection the
    downloader opens, so a redirect or a DNS answer that changes cannot reach a private address."""

    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()

    def host_allowed(self, host: str, port: int | None) -> bool:
        host = _canonical_host(host)
        for entry in self.allowed_hosts:
            allowed_host, allowed_port = _parsed_entry(entry)
            if allowed_host == host and (allowed_port is None or allowed_port == port):
                return True
        return False

    def permits(self, host: str, port: int | None, ip: str) -> bool:
        return self.allow_private or self.host_allowed(host, port) or not ip_forbidden(ip)


@functools.lru_cache(maxsize=256)
def _parsed_entry(entry: str) -> tuple[str | None, int | None]:
    try:
        host, port = parse_allowed_host(entry)
    except ValueError:
        return None, None  # refused by the settings already; never matches here
    return _canonical_host(host), port


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Refuse links whose host resolves (in any of its addresses) to a private network. The refusal
    carries (and logs) a hint for the operator naming the setting that would allow the host."""
    if policy.allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    if policy.host_allowed(host, port):
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise InvalidUrl(_("The host {host} could not be found.").format(host=host)) from None
    for info in infos:
        ip = str(info[4][0])
        if ip_forbidden(ip):
            hint = allow_hint(host, port)
            log.info("link to %s refused: private address %s. %s", host_port(host, port), ip, hint)
            raise PrivateAddress(hint=hint)
