import pytest

from core.errors import InvalidUrl, PrivateAddress
from core.urls import AddressPolicy, check_url, extract_url, extract_urls, ip_forbidden, normalize_url


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
        ("file:///etc/passwd", "Only http:// and https://"),
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
