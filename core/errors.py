"""The one family of errors the core raises: each carries a `code` and a sentence a person can read
(web maps codes to HTTP statuses in one table, the bots say the sentence)."""

from __future__ import annotations

import errno
import logging
from typing import Any

from core.i18n import N_
from core.words import human_duration, human_size  # noqa: F401 - core.cuts reads human_duration here

log = logging.getLogger(__name__)


class MediabotError(Exception):
    code = "error"
    default_message = N_("Something went wrong.")
    # Advice for the operator (the CLI prints it, the log records it); never shown to chat or API users.
    hint: str | None = None
    # What a site's refusal says about the identity (cookies file, proxy) that was used (core.pacing.classify):
    # "rate_limited", "bot_check", "login_required", "proxy_failed"; None when it says nothing about it.
    outcome: str | None = None

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        self.message = message or self.default_message
        if hint is not None:
            self.hint = hint
        super().__init__(self.message)

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediabotError:
        """An error that travelled as `to_dict()` plus its hint (a worker's answer), as the class its code
        names, so the front end says and maps it as if it had been raised here."""
        code = str(data.get("code") or cls.code)
        found: type[MediabotError] = next(
            (c for c in _family(MediabotError) if c.code == code), MediabotError
        )
        error = Exception.__new__(found)
        MediabotError.__init__(error, data.get("message") or None, hint=data.get("hint"))
        error.code = code
        return error


def _family(cls: type[MediabotError]) -> list[type[MediabotError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_family(sub)]
    return found


class InvalidUrl(MediabotError):
    code = "invalid_url"
    default_message = N_("That doesn't look like a link: it should start with http:// or https://.")


class UnsupportedUrl(MediabotError):
    code = "unsupported_url"
    default_message = N_("This site is not supported.")
    # The same code when the site is fine but the page holds nothing we can download.
    no_media_message = N_("That page has no video or sound we can find.")


class PrivateAddress(MediabotError):
    code = "private_address"
    default_message = N_("That link points to a private network address, which is not allowed.")


class TooLarge(MediabotError):
    code = "too_large"
    default_message = N_("This file is larger than the limit.")


class TooLong(MediabotError):
    code = "too_long"
    default_message = N_("This media is longer than the limit.")


class DownloadFailed(MediabotError):
    code = "download_failed"
    default_message = N_("The download failed.")


class LoginRequired(MediabotError):
    code = "login_required"
    default_message = N_(
        "This site wants a login (or a check that you're not a bot) before it hands out that media. "
        "The operator can add a cookies file for the site to MEDIABOT_COOKIES_DIR."
    )


class Cancelled(MediabotError):
    code = "cancelled"
    default_message = N_("The download was cancelled.")


class StorageError(MediabotError):
    code = "storage_error"
    default_message = N_("The file could not be saved. Please try again later.")

    @classmethod
    def from_os_error(cls, exc: OSError) -> StorageError:
        """A full disk (or quota) said plainly; other failures in general words (details go to the log)."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return cls(
                N_("The server's disk is full, so the file could not be saved; please try again later.")
            )
        return cls()

    @classmethod
    def out_of_space(cls, size: int) -> StorageError:
        """A download refused before it starts: its size is known and the disk has not that much free."""
        return cls(
            N_("The server is out of disk space for this {size} file; please try again later.").format(
                size=human_size(size)
            )
        )


class UnknownFormat(MediabotError):
    code = "unknown_format"
    default_message = N_("This link has no format with that id. Ask for its formats first.")


class WontFit(MediabotError):
    code = "wont_fit"
    default_message = N_("No smaller copy of this media fits the limit.")


class WorkerLost(MediabotError):
    code = "worker_lost"
    default_message = N_("The download was interrupted several times and was given up. Please try again.")


class NotFound(MediabotError):
    code = "not_found"
    default_message = N_("No such job.")


class Unavailable(MediabotError):
    code = "unavailable"
    default_message = N_("The service is busy or partly down. Please try again in a minute.")


class InvalidRequest(MediabotError):
    code = "invalid_request"
    default_message = N_("The request is not valid.")


class IdempotencyConflict(MediabotError):
    code = "idempotency_conflict"
    default_message = N_(
        "This Idempotency-Key was used in the last 24 hours for a different request. "
        "Send the same request again, or use a new key."
    )


class LinkExpired(MediabotError):
    code = "link_expired"
    default_message = N_("This download link has expired. Ask for the file again to get a new link.")


class LinkInvalid(MediabotError):
    code = "link_invalid"
    default_message = N_("This download link is not valid. Check that it was copied completely.")


# Rate limits (every front end's: core.jobs.quotas counts, web and the bots refuse with these).
class RateLimited(MediabotError):
    code = "rate_limited"
    default_message = N_("Too many requests. Try again later.")

    def __init__(self, retry_after_s: float, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooManyJobs(RateLimited):
    code = "too_many_jobs"
    default_message = N_("Too many of your downloads are still running. Wait for one to finish.")
