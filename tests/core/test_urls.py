import logging
from urllib.parse import urlsplit

import pytest

from core.errors import InvalidUrl, PrivateAddress
from core.net import AddressPolicy, check_url, extract_url, extract_urls, ip_forbidden, normalize_url


def test_text_with_links_yields_the_links() -> None:
    text = "look: https://example.com/watch?v=1, and (https://x.org/a_(b)) too. http://example.com/watch?v=1"
    assert extract_urls(text) == [
        "https://example.com/watch?v=1",
        "https://x.org/a_(b)",
        "http://example.com/watch?v=1",
    ]
    assert extract_url("please get https://example.com/v.mp4!") == "https://example.com/v.mp4"


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "Send a link"),
        ("no link here", "doesn't look like a link"),
        ("ftp://example.com/file.mp4", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https:// links are supported, not file://."),
        # A scheme without slashes is named as written, not as "javascript://".
        ("javascript:alert(1)", "Only http:// and https:// links are supported, not javascript:."),
        ("mailto:someone@example.com", "not mailto:."),
        ("https://nodot/", "no valid host"),
        ("https://example.com:99999/x", "invalid port"),
    ],
)
def test_malformed_links_are_refused_in_plain_words(text: str, fragment: str) -> None:
    with pytest.raises(InvalidUrl) as info:
        extract_url(text)
    assert fragment in info.value.message
    assert info.value.code == "invalid_url"


def test_normalised_url_drops_what_does_not_name_the_media() -> None:
    a = normalize_url("HTTPS://WWW.Example.COM:443/watch?v=abc&utm_source=tw&fbclid=1#t=30")
    b = normalize_url("https://www.example.com/watch?v=abc")
    assert a == b == "https://www.example.com/watch?v=abc"
    assert normalize_url("http://example.com:8080/a?x=1") == "http://example.com:8080/a?x=1"
    assert normalize_url("http://example.com/a?v=1") != normalize_url("http://example.com/a?v=2")


@pytest.mark.parametrize(
    "ip, forbidden",
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fe80::1", True),
        ("fc00::1", True),
        ("::ffff:127.0.0.1", True),
        ("224.0.0.1", True),
        ("100.64.0.1", True),
        ("93.184.216.34", False),
        ("2606:2800:220:1:248:1893:25c8:1946", False),
    ],
)
def test_private_and_reserved_addresses(ip: str, forbidden: bool) -> None:
    assert ip_forbidden(ip) is forbidden


async def test_private_hosts_refused_unless_allowed() -> None:
    for url in (
        "http://127.0.0.1:8000/v.mp4",
        "http://localhost/v.mp4",
        "http://[::1]/x",
        "http://0x7f000001/",
    ):
        with pytest.raises(PrivateAddress):
            await check_url(url, AddressPolicy())
    await check_url("http://127.0.0.1:8000/v.mp4", AddressPolicy(allowed_hosts=("127.0.0.1:8000",)))
    with pytest.raises(PrivateAddress):
        await check_url("http://127.0.0.1:8001/v.mp4", AddressPolicy(allowed_hosts=("127.0.0.1:8000",)))
    await check_url("http://10.0.0.1/v.mp4", AddressPolicy(allow_private=True))


@pytest.mark.parametrize(
    "ip, forbidden",
    [
        # 6to4 (2002::/16) is judged by the IPv4 address it carries.
        ("2002:7f00:1::1", True),  # 127.0.0.1
        ("2002:c0a8:101::1", True),  # 192.168.1.1
        ("2002:a9fe:a9fe::1", True),  # 169.254.169.254
        ("2002:5db8:d822::1", False),  # 93.184.216.34
        # NAT64's well-known prefix too (a DNS64 network's answer for an IPv4-only site).
        ("64:ff9b::7f00:1", True),
        ("64:ff9b::a00:1", True),
        ("64:ff9b::5db8:d822", False),
        # IPv4-translated (::ffff:0:a.b.c.d).
        ("::ffff:0:7f00:1", True),
        # Never fetched: Teredo, local-use NAT64, IPv4-compatible, site-local.
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", True),
        ("2001::5db8:d822", True),
        ("64:ff9b:1::5db8:d822", True),
        ("::7f00:1", True),
        ("::5db8:d822", True),
        ("fec0::1", True),
        ("feff::1", True),
    ],
)
def test_ipv6_addresses_that_carry_an_ipv4_address(ip: str, forbidden: bool) -> None:
    assert ip_forbidden(ip) is forbidden


async def test_a_6to4_link_to_loopback_is_refused_on_default_settings() -> None:
    with pytest.raises(PrivateAddress):
        await check_url("http://[2002:7f00:1::1]/", AddressPolicy())
    with pytest.raises(PrivateAddress):
        await check_url("http://[fec0::1]:8080/v.mp4", AddressPolicy())


async def test_refusal_tells_the_operator_how_to_allow_the_host(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="core.net")
    with pytest.raises(PrivateAddress) as info:
        await check_url("http://127.0.0.1:8000/v.mp4", AddressPolicy())
    assert info.value.hint is not None
    assert "MEDIABOT_ALLOWED_PRIVATE_HOSTS=127.0.0.1:8000" in info.value.hint
    # The person who sent the link gets the plain refusal; the operator's advice is not in it.
    assert "MEDIABOT_" not in info.value.message
    assert info.value.to_dict() == {"code": "private_address", "message": info.value.message}
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 1 and "MEDIABOT_ALLOWED_PRIVATE_HOSTS=127.0.0.1:8000" in lines[0], lines

    with pytest.raises(PrivateAddress) as info:
        await check_url("http://[::1]/x", AddressPolicy())
    assert "MEDIABOT_ALLOWED_PRIVATE_HOSTS=[::1]:80 " in (info.value.hint or "")
    # Errors without advice have none.
    assert InvalidUrl().hint is None and PrivateAddress().hint is None


@pytest.mark.parametrize(
    "allowed, url",
    [
        ("localhost:8000", "http://127.0.0.1:8000/v.mp4"),
        ("localhost:8000", "http://[::1]:8000/v.mp4"),
        ("127.0.0.1:8000", "http://localhost:8000/v.mp4"),
        ("127.0.0.1:8000", "http://LOCALHOST.:8000/v.mp4"),
        ("[::1]:8000", "http://localhost:8000/v.mp4"),
        ("::1", "http://127.0.0.1:8000/v.mp4"),
        ("localhost", "http://127.0.0.1:9/v.mp4"),
    ],
)
async def test_localhost_and_loopback_addresses_are_one_host(allowed: str, url: str) -> None:
    policy = AddressPolicy(allowed_hosts=(allowed,))
    await check_url(url, policy)
    # The same rule applies to each connection the downloader opens.
    parts = urlsplit(url)
    assert policy.permits(parts.hostname or "", parts.port, "127.0.0.1")


async def test_a_loopback_allowance_is_for_its_port_only() -> None:
    policy = AddressPolicy(allowed_hosts=("localhost:8000",))
    for url in ("http://127.0.0.1:8001/v.mp4", "http://localhost/v.mp4", "http://127.0.0.2:8000/v.mp4"):
        with pytest.raises(PrivateAddress):
            await check_url(url, policy)
