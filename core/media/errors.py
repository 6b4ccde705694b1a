"""yt-dlp's exceptions in the words of the person who sent the link."""

from __future__ import annotations

import errno
import logging
import re

from core.errors import (
    Cancelled,
    DownloadFailed,
    LoginRequired,
    MediabotError,
    PrivateAddress,
    RateLimited,
    StorageError,
    UnsupportedUrl,
)
from core.i18n import N_
from core.media.control import Control
from core.media.netguard import blocked_address
from core.net import allow_hint, host_port
from core.pacing.classify import classify

log = logging.getLogger(__name__)


def translate_error(exc: BaseException, control: Control) -> MediabotError:
    """yt-dlp's exceptions in the words of the person who sent the link."""
    if control.error is not None:
        return control.error
    if control.cancel.is_set():
        # Stopped on purpose (cancel, hand-back, lost lease), also while the page was still being read:
        # whatever yt-dlp made of the aborted connection is not the site's failure.
        return Cancelled()
    blocked = blocked_address()
    if blocked:
        host, port, ip = blocked
        hint = allow_hint(host, port)
        log.info("connection to %s refused: private address %s. %s", host_port(host, port), ip, hint)
        return PrivateAddress(
            N_("That link leads to a private network address, which is not allowed."), hint=hint
        )
    cause = (getattr(exc, "exc_info", None) or (None, None))[1]
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
        # Our disk filled up while writing the download: not the site's fault, so not download_failed.
        return StorageError.from_os_error(cause)
    text = str(exc)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if "No space left on device" in text or "Disk quota exceeded" in text:
        # The same, reported as text (FFmpeg merging or converting into a full disk).
        return StorageError.from_os_error(OSError(errno.ENOSPC, "No space left on device"))
    if "Unsupported URL" in text:
        # yt-dlp's generic extractor read the page and found no media in it: the site itself may be fine.
        return UnsupportedUrl(UnsupportedUrl.no_media_message)
    if "is not a valid URL" in text or "No suitable extractor" in text:
        return UnsupportedUrl()
    status = re.search(r"HTTP Error (\d{3})", text)
    outcome = classify(text, int(status.group(1)) if status else None)
    refused: MediabotError | None = None
    if outcome == "proxy_failed":
        refused = DownloadFailed(N_("The site could not be reached. Please try again later."))
    elif _LOGIN_RE.search(text) or outcome == "login_required":
        refused = LoginRequired()
    elif outcome is not None:
        refused = RateLimited(60.0, "The site is refusing our downloads for now. Please try again later.")
    if refused is not None:
        # The runner reads `outcome`: the identity rests (or its cookies file is set aside) and the job is
        # tried with another one before these words reach anyone.
        refused.outcome = outcome
        return refused
    match = re.search(r"HTTP Error (\d{3}): ([^\n(]+)", text)
    if match:
        code, reason = match.group(1), match.group(2).strip().rstrip(".")
        if code in ("401", "403"):
            return DownloadFailed(
                N_("The site refused access ({code} {reason}). The media may be private.").format(
                    code=code, reason=reason
                )
            )
        if code == "404":
            return DownloadFailed(N_("The link returned 404 Not Found. Check that the media still exists."))
        return DownloadFailed(
            N_("The site answered {code} {reason}. Please try again later.").format(code=code, reason=reason)
        )
    if "Requested format is not available" in text:
        return DownloadFailed(N_("No format of this media matches the requested quality."))
    if re.search(r"timed out|Connection refused|Name or service not known|getaddrinfo", text, re.I):
        return DownloadFailed(N_("The site could not be reached. Please try again later."))
    return DownloadFailed()


# What extractors say when they want an account or a bot check (YouTube, Instagram, X, TikTok, Vimeo...).
_LOGIN_RE = re.compile(
    r"sign in to confirm|confirm you.re not a bot|login required|log in to|requires? (?:a )?login|"
    r"--cookies|cookies-from-browser|account authentication|private video|video is private|members[- ]only|"
    r"age[- ]restricted|inappropriate for some users|rate-limit reached or login",
    re.IGNORECASE,
)
