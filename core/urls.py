"""Links: finding them in text, normalising them into cache keys, and refusing private addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from core.errors import InvalidUrl, PrivateAddress

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
        raise InvalidUrl("Send a link to a video or a song.")
    if len(text) > 4096:
        raise InvalidUrl("That message is too long to be a link.")
    urls = extract_urls(text)
    if not urls:
        scheme = _SCHEME_RE.match(text)
        if scheme and scheme.group(1).lower() not in ("http", "https"):
            raise InvalidUrl(
                f"Only http:// and https:// links are supported, not {scheme.group(1).lower()}://."
            )
        raise InvalidUrl()
    url = urls[0]
    parts = urlsplit(url)
    try:
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidUrl("That link has an invalid port.") from None
    if not host or "." not in host.strip(".") and not _is_ip(host) and host != "localhost":
        raise InvalidUrl("That link has no valid host name.")
    if len(url) > 2048:
        raise InvalidUrl("That link is too long.")
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


def ip_forbidden(ip: str) -> bool:
    """True for loopback, private, link-local, multicast, reserved and other non-public addresses."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not addr.is_global or addr.is_multicast or addr.is_reserved or addr.is_unspecified


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts may be fetched. Applied to the submitted link and again to every connection the
    downloader opens, so a redirect or a DNS answer that changes cannot reach a private address."""

    allow_private: bool = False
    allowed_hosts: tuple[str, ...] = ()

    def host_allowed(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]").rstrip(".")
        for entry in self.allowed_hosts:
            allowed = urlsplit("//" + entry.strip())
            if allowed.hostname == host and (allowed.port is None or allowed.port == port):
                return True
        return False

    def permits(self, host: str, port: int | None, ip: str) -> bool:
        return self.allow_private or self.host_allowed(host, port) or not ip_forbidden(ip)


async def check_url(url: str, policy: AddressPolicy) -> None:
    """Refuse links whose host resolves (in any of its addresses) to a private network."""
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
        raise InvalidUrl(f"The host {host} could not be found.") from None
    for info in infos:
        if ip_forbidden(str(info[4][0])):
            raise PrivateAddress()
