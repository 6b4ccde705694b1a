"""MEDIABOT_SITE_LIMITS and MEDIABOT_PROXIES: what an operator writes, and one line when it is wrong."""

from __future__ import annotations

import pytest

from core.media.sites import site_for, site_of_url
from core.pacing import SiteLimit, parse_proxies, parse_site_limits


def test_limits_by_site_and_default() -> None:
    limits = parse_site_limits("youtube=2/10s, Instagram=1/30s,example.com=1/2m,*=8")
    assert limits.for_site("youtube") == SiteLimit(2, 10.0)
    assert limits.for_site("instagram") == SiteLimit(1, 30.0)
    assert limits.for_site("example.com") == SiteLimit(1, 120.0)
    assert limits.for_site("vimeo") == SiteLimit(8, 0.0)
    assert str(limits) == "youtube=2/10s,instagram=1/30s,example.com=1/120s,*=8"


def test_no_limits_paces_nothing() -> None:
    assert parse_site_limits("").for_site("youtube") is None
    assert parse_site_limits(None).for_site("youtube") is None
    assert parse_site_limits("youtube=1").for_site("vimeo") is None


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("youtube=two", "'two'"),
        ("youtube", "'youtube'"),
        ("youtube=0", "'youtube=0'"),
        ("youtube=2/10h", "'2/10h'"),
        ("youtube=2/s", "'2/s'"),
        ("you tube=1", "'you tube'"),
        ("youtube=1,youtube=2", "'youtube' is given twice"),
        ("*=1,*=2", "'*' is given twice"),
    ],
)
def test_malformed_limits_name_the_variable_and_the_part(text: str, bad: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_site_limits(text)
    message = str(caught.value)
    assert message.startswith("MEDIABOT_SITE_LIMITS: ")
    assert bad in message
    assert "\n" not in message


def test_proxies_for_every_site_and_per_site() -> None:
    rules = parse_proxies(
        "http://p:3128,socks5://u:pw@h:1080,youtube=http://p1:3128|https://a:s3cret@p2:3128,vimeo="
    )
    assert [p.url for p in rules.for_site("instagram")] == ["http://p:3128", "socks5://u:pw@h:1080"]
    assert [p.url for p in rules.for_site("youtube")] == ["http://p1:3128", "https://a:s3cret@p2:3128"]
    assert rules.for_site("vimeo") == ()  # named with nothing: direct
    assert len(rules.all()) == 4
    assert parse_proxies("*=http://d:1,youtube=http://y:2").for_site("x")[0].url == "http://d:1"
    assert parse_proxies("").for_site("youtube") == ()


def test_proxy_passwords_never_show() -> None:
    rules = parse_proxies("youtube=http://user:s3cret@p2:3128,socks5://u:hunter2@h:1080")
    shown = " ".join(
        [str(rules), repr(rules), *(str(p) for p in rules.all()), *(repr(p) for p in rules.all())]
    )
    assert "s3cret" not in shown and "hunter2" not in shown
    assert "http://user:***@p2:3128" in shown
    assert "socks5://u:***@h:1080" in shown


@pytest.mark.parametrize(
    "text",
    [
        "ftp://user:s3cret@h:21",
        "http://user:s3cret@h:99999",
        "user:s3cret@h:3128",
        "youtube=http://user:s3cret@",
        "youtube=http://user:s3cret@h:3128/path",
        "youtube=http://a:1,youtube=http://b:2",
        "*=http://a:1,*=http://b:2",
        "you tube=http://a:1",
    ],
)
def test_malformed_proxies_name_the_variable_never_the_password(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_proxies(text)
    message = str(caught.value)
    assert message.startswith("MEDIABOT_PROXIES")
    assert "s3cret" not in message
    assert "\n" not in message


def test_sites_are_extractor_families_or_hosts() -> None:
    assert site_of_url("https://www.youtube.com/watch?v=dQw4w9WgXcQ") == "youtube"
    assert site_of_url("https://youtu.be/dQw4w9WgXcQ") == "youtube"
    assert site_of_url("https://www.youtube.com/@somechannel") == "youtube"  # YoutubeTab: same budget
    assert site_of_url("https://www.instagram.com/p/abc123/") == "instagram"
    assert site_of_url("https://WWW.Example.com:8080/a.mp4") == "example.com"
    assert site_of_url("http://127.0.0.2:8000/a.mp4") == "127.0.0.2"
    # Only the generic extractor allowed: a YouTube link counts against its host.
    assert site_of_url("https://www.youtube.com/watch?v=dQw4w9WgXcQ", ["generic"]) == "youtube.com"
    assert site_for("YoutubeTab", "https://www.youtube.com/@x") == "youtube"
    assert site_for("youtube:tab", "https://www.youtube.com/@x") == "youtube"
    assert site_for("InstagramIOS", "") == "instagram"
    assert site_for("Generic", "https://www.a.org/x") == "a.org"
    assert site_for("html5", "https://b.org/x") == "b.org"
    assert site_for(None, "https://c.org/x") == "c.org"
