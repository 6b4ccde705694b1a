"""The connection guard: every socket yt-dlp opens (and every hop curl_cffi follows) is checked against the
job's address policy after DNS, so a redirect to a private host or a DNS answer that changed since the
submit-time check is refused too; a job's control can shut its sockets."""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from core.media.control import Control
from core.net import AddressPolicy

log = logging.getLogger(__name__)

_guard = threading.local()
_guard_lock = threading.Lock()
_guard_installed = False


class ForbiddenAddress(OSError):
    pass


@contextlib.contextmanager
def guarded(
    policy: AddressPolicy,
    control: Control,
    pot_provider: tuple[str, int] | None,
    proxy: str | None = None,
) -> Iterator[None]:
    """The connection guard's policy and a job's control, for yt-dlp's calls on this thread. With a `proxy`
    (the operator's, possibly on a private network) the connection to it is allowed, and each request's
    own host (the link, every redirect) is checked instead: through a proxy it is the proxy that resolves
    and connects to it."""
    _guard.policy = policy
    _guard.control = control
    _guard.blocked = None
    _guard.pot_provider = pot_provider
    _guard.proxy = _proxy_address(proxy)
    try:
        yield
    finally:
        _guard.policy = None
        _guard.control = None
        _guard.pot_provider = None
        _guard.proxy = None


def _proxy_address(proxy: str | None) -> tuple[str, int] | None:
    if not proxy:
        return None
    parts = urlsplit(proxy)
    default = 1080 if parts.scheme.lower().startswith("socks") else 443 if parts.scheme == "https" else 80
    return ((parts.hostname or "").lower(), parts.port or default)


def _to_proxy(host: str, port: int) -> bool:
    return getattr(_guard, "proxy", None) == (host.lower(), port)


def check_target(url: str) -> None:
    """A request that goes through the job's proxy: its own host must pass the policy (blocking: resolves)."""
    policy: AddressPolicy | None = getattr(_guard, "policy", None)
    if getattr(_guard, "proxy", None) is None or policy is None or policy.allow_private:
        return
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    if policy.host_allowed(host, port):
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return  # the proxy may know names we don't; what we cannot resolve cannot be checked here
    for info in infos:
        ip = str(info[4][0])
        if not policy.permits(host, port, ip):
            _guard.blocked = (host, port, ip)
            raise ForbiddenAddress(f"connection to a private address refused ({host})")


def blocked_address() -> tuple[str, int, str] | None:
    """(host, port, address) of the private address this thread's last guarded call was refused, if any."""
    return getattr(_guard, "blocked", None)


def install_connection_guard() -> None:
    global _guard_installed
    with _guard_lock:
        if _guard_installed:
            return
        from yt_dlp.networking import _helper

        original = _helper.create_connection

        def guarded(address: Any, *args: Any, **kwargs: Any) -> Any:
            policy: AddressPolicy | None = getattr(_guard, "policy", None)
            control: Control | None = getattr(_guard, "control", None)
            if policy is None and control is None:
                return original(address, *args, **kwargs)
            host, port = address[0], address[1]
            make_socket = kwargs.pop("_create_socket_func", _helper._socket_connect)

            def checked(ip_addr: Any, *a: Any, **kw: Any) -> Any:
                if control is not None and control.cancel.is_set():
                    raise ConnectionAbortedError("download cancelled")
                ip = ip_addr[4][0]
                if (
                    policy is not None
                    and not policy.allow_private
                    and not policy.permits(str(host), port, ip)
                    and not _pot_provider_call(str(host), port)
                    and not _to_proxy(str(host), port)
                ):
                    _guard.blocked = (str(host), port, ip)
                    raise ForbiddenAddress(f"connection to a private address refused ({host})")
                sock = make_socket(ip_addr, *a, **kw)
                if control is not None:
                    control.track(sock)
                return sock

            return original(address, *args, _create_socket_func=checked, **kwargs)

        import importlib

        for name in ("_urllib", "_requests", "_websockets", "_curlcffi"):
            try:
                module = importlib.import_module(f"yt_dlp.networking.{name}")
            except Exception:  # noqa: BLE001 - optional handlers whose dependency is absent
                continue
            if getattr(module, "create_connection", None) is original:
                module.create_connection = guarded  # type: ignore[attr-defined]
        _mark_pot_provider_calls()
        _guard_impersonated_requests()
        _guard_proxied_requests()
        _guard_installed = True


_REDIRECTS = (301, 302, 303, 307, 308)


def _guard_proxied_requests() -> None:
    """urllib opens each request (the link and every redirect) through its handler's http_open/https_open,
    where the request's own URL is still known although the socket goes to the proxy: check it there."""
    from yt_dlp.networking import _urllib

    handler = _urllib.HTTPHandler
    for name in ("http_open", "https_open"):
        original = getattr(handler, name)

        def opened(self: Any, req: Any, _original: Any = original) -> Any:
            check_target(req.full_url)
            return _original(self, req)

        setattr(handler, name, opened)


def _guard_impersonated_requests() -> None:
    """curl_cffi (browser impersonation) connects in libcurl, past create_connection. For a job with an
    address policy, its session follows redirects here instead of in curl: each hop's addresses are checked
    first, and curl is pinned to them (CURLOPT_RESOLVE), so neither a redirect nor a DNS answer that changes
    in between reaches a private address."""
    try:
        from curl_cffi import CurlOpt
        from yt_dlp.networking._curlcffi import CurlCFFIRH
        from yt_dlp.networking.exceptions import TransportError
    except ImportError:  # curl_cffi absent: impersonation is unavailable, nothing to guard
        return
    original = CurlCFFIRH._create_instance

    def checked_hop(url: str, policy: AddressPolicy) -> list[str]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise TransportError(f"could not resolve {host}", cause=exc) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for ip in addresses:
            if not policy.permits(host, port, ip):
                _guard.blocked = (host, port, ip)
                refused = ForbiddenAddress(f"connection to a private address refused ({host})")
                raise TransportError(str(refused), cause=refused)
        # curl's RESOLVE syntax: host:port:addr[,addr], IPv6 addresses in brackets.
        pinned = ",".join(f"[{ip}]" if ":" in ip else ip for ip in addresses)
        return [f"{host}:{port}:{pinned}"]

    def create_instance(self: Any, cookiejar: Any = None) -> Any:
        session = original(self, cookiejar=cookiejar)
        plain = session.request

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            policy: AddressPolicy | None = getattr(_guard, "policy", None)
            if policy is None or policy.allow_private:
                return plain(method, url, *args, **kwargs)
            hops = kwargs.pop("max_redirects", None) or 5
            kwargs["allow_redirects"] = False
            for _ in range(hops + 1):
                session.curl_options[CurlOpt.RESOLVE] = checked_hop(url, policy)
                try:
                    response = plain(method, url, *args, **kwargs)
                finally:
                    session.curl_options.pop(CurlOpt.RESOLVE, None)
                location = response.headers.get("location")
                if response.status_code not in _REDIRECTS or not location:
                    return response
                response.close()
                target = urljoin(url, location)
                if urlsplit(target).hostname != urlsplit(url).hostname and kwargs.get("headers"):
                    # As curl does on a change of host: credentials stay with the host they were meant for.
                    kwargs["headers"] = {
                        k: v
                        for k, v in dict(kwargs["headers"]).items()
                        if k.lower() not in ("authorization", "cookie")
                    }
                if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                    method, kwargs["data"] = "GET", None
                url = target
            raise TransportError(f"more than {hops} redirects")

        session.request = request
        return session

    CurlCFFIRH._create_instance = create_instance  # type: ignore[method-assign]


def _pot_provider_call(host: str, port: int) -> bool:
    """A connection the PO token plugin opens to the configured provider server (often on a private
    network: a compose service): allowed for the plugin's own requests only, never for a link or redirect."""
    return bool(getattr(_guard, "in_pot_provider", False)) and (host.lower(), port) == getattr(
        _guard, "pot_provider", None
    )


def _mark_pot_provider_calls() -> None:
    """Marks the thread while a PO token provider makes its request (yt-dlp's PoTokenProvider helper)."""
    try:
        from yt_dlp.extractor.youtube.pot.provider import PoTokenProvider
    except ImportError:  # a yt-dlp without the PO token framework
        return
    original = PoTokenProvider._request_webpage

    @functools.wraps(original)
    def marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = getattr(_guard, "in_pot_provider", False)
        _guard.in_pot_provider = True
        try:
            return original(self, *args, **kwargs)
        finally:
            _guard.in_pot_provider = before

    PoTokenProvider._request_webpage = marked  # type: ignore[method-assign]


def share_ssl_contexts() -> None:
    """Each YoutubeDL builds its own SSL context, loading the whole CA bundle (about 25 ms, a quarter of a
    30 MB local job); we make one YoutubeDL per job, so the contexts are built once per set of options and
    shared (an SSLContext is safe to use from several threads)."""
    from yt_dlp.networking import common

    with _guard_lock:
        if getattr(common.make_ssl_context, "cache_info", None) is not None:
            return
        common.make_ssl_context = functools.lru_cache(maxsize=16)(common.make_ssl_context)  # type: ignore[attr-defined]
