"""What a site's refusal means for the identity that was used, read from yt-dlp's error text.

Order matters: yt-dlp appends "Use --cookies-from-browser or --cookies for the authentication" to the bot
check, and Instagram says "rate-limit reached or login required" for both. Private, members-only and
age-restricted media are not counted against the cookies file: another account would not see them either.
"""

from __future__ import annotations

import re
from typing import Literal

Outcome = Literal["rate_limited", "bot_check", "login_required", "proxy_failed"]

_RATE_LIMITED = re.compile(
    r"HTTP Error 429|Too Many Requests|rate[- ]limit(?:ed)? reached|rate[- ]limited|rate limit exceeded|"
    r"try again later\. The current session has been rate-limited|Please wait a few minutes",
    re.IGNORECASE,
)
_BOT_CHECK = re.compile(
    r"confirm you.re not a bot|not a robot|unusual traffic|captcha|automated queries|"
    r"sign in to confirm that you.re not a bot",
    re.IGNORECASE,
)
_NOT_THE_ACCOUNT = re.compile(
    r"private video|video is private|members[- ]only|join this channel|age[- ]restricted|confirm your age|"
    r"inappropriate for some users|premium",
    re.IGNORECASE,
)
_LOGIN = re.compile(
    r"login required|log in to|login to|requires? (?:a )?login|sign in to|not logged in|"
    r"account authentication|session (?:has )?expired|cookies are no longer valid|"
    r"use --cookies|--cookies-from-browser",
    re.IGNORECASE,
)
# Python's and yt-dlp's words for a proxy that could not be reached or refused us.
_PROXY = re.compile(
    r"ProxyError|Unable to connect to proxy|Tunnel connection failed|proxy (?:server )?(?:refused|"
    r"authentication required)|Cannot connect to proxy|SOCKS|407 Proxy",
    re.IGNORECASE,
)


def classify(message: str, http_status: int | None = None) -> Outcome | None:
    """`rate_limited` and `bot_check`: rest the identity; `login_required`: set its cookies file aside;
    `proxy_failed`: rest its proxy; None: not about the identity (a missing video, a full disk...)."""
    text = message or ""
    if http_status == 407 or (_PROXY.search(text) and "HTTP Error 429" not in text):
        return "proxy_failed"
    if http_status == 429 or _RATE_LIMITED.search(text):
        return "rate_limited"
    if _BOT_CHECK.search(text):
        return "bot_check"
    if _NOT_THE_ACCOUNT.search(text):
        return None
    if _LOGIN.search(text):
        return "login_required"
    return None
