"""What yt-dlp's error texts mean for the identity that was used."""

from __future__ import annotations

import pytest

from core.pacing import classify

CASES = [
    (
        "ERROR: [generic] d: Unable to download webpage: HTTP Error 429: Too Many Requests",
        None,
        "rate_limited",
    ),
    ("anything", 429, "rate_limited"),
    (
        "ERROR: [youtube] abc: This content isn't available, try again later. The current session has been "
        "rate-limited by YouTube for up to an hour.",
        None,
        "rate_limited",
    ),
    (
        "ERROR: [Instagram] C1: Requested content is not available, rate-limit reached or login required. "
        "Use --cookies, --cookies-from-browser, --username and --password",
        None,
        "rate_limited",
    ),
    (
        "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you\u2019re not a bot. Use --cookies-from-browser or "
        "--cookies for the authentication.",
        None,
        "bot_check",
    ),
    (
        "ERROR: unable to download video data: HTTP Error 403: Sign in to confirm you're not a bot",
        403,
        "bot_check",
    ),
    ("ERROR: [generic] b: Unable to download webpage: HTTP Error 403: Login required", 403, "login_required"),
    ("ERROR: [instagram:story] x: You need to log in to access this content", None, "login_required"),
    ("ERROR: [vimeo] 1: This video is private", None, None),
    (
        "ERROR: [youtube] x: Sign in to confirm your age. This video may be inappropriate for some users.",
        None,
        None,
    ),
    ("ERROR: [youtube] x: Join this channel to get access to members-only content", None, None),
    ("ERROR: [generic] x: Unable to download webpage: HTTP Error 404: Not Found", 404, None),
    (
        "ERROR: [generic] e: Unable to download webpage: ('Unable to connect to proxy', "
        'NewConnectionError("Failed to establish a new connection: [Errno 111] Connection refused"))',
        None,
        "proxy_failed",
    ),
    ("Tunnel connection failed: 407 Proxy Authentication Required", None, "proxy_failed"),
    ("", None, None),
]


@pytest.mark.parametrize(("message", "status", "expected"), CASES)
def test_classify(message: str, status: int | None, expected: str | None) -> None:
    assert classify(message, status) == expected
