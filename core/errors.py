"""Errors the core reports to people: a stable code and a sentence written for the person who asked."""

from __future__ import annotations

import errno


class MediabotError(Exception):
    code = "error"
    default_message = "Something went wrong."
    # Advice for the operator (the CLI prints it, the log records it); never shown to chat or API users.
    hint: str | None = None

    def __init__(self, message: str | None = None, *, hint: str | None = None) -> None:
        self.message = message or self.default_message
        if hint is not None:
            self.hint = hint
        super().__init__(self.message)

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidUrl(MediabotError):
    code = "invalid_url"
    default_message = "That doesn't look like a link: it should start with http:// or https://."


class UnsupportedUrl(MediabotError):
    code = "unsupported_url"
    default_message = "This site is not supported."
    # The same code when the site is fine but the page holds nothing we can download.
    no_media_message = "That page has no video or sound we can find."


class PrivateAddress(MediabotError):
    code = "private_address"
    default_message = "That link points to a private network address, which is not allowed."


class TooLarge(MediabotError):
    code = "too_large"
    default_message = "This file is larger than the limit."


class TooLong(MediabotError):
    code = "too_long"
    default_message = "This media is longer than the limit."


class DownloadFailed(MediabotError):
    code = "download_failed"
    default_message = "The download failed."


class LoginRequired(MediabotError):
    code = "login_required"
    default_message = (
        "This site wants a login (or a check that you're not a bot) before it hands out that media. "
        "The operator can add a cookies file for the site to MEDIABOT_COOKIES_DIR."
    )


class Cancelled(MediabotError):
    code = "cancelled"
    default_message = "The download was cancelled."


class StorageError(MediabotError):
    code = "storage_error"
    default_message = "The file could not be saved. Please try again later."

    @classmethod
    def from_os_error(cls, exc: OSError) -> StorageError:
        """A full disk (or quota) said plainly; other failures in general words (details go to the log)."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return cls("The server's disk is full, so the file could not be saved; please try again later.")
        return cls()

    @classmethod
    def out_of_space(cls, size: int) -> StorageError:
        """A download refused before it starts: its size is known and the disk has not that much free."""
        return cls(
            f"The server is out of disk space for this {human_size(size)} file; please try again later."
        )


class UnknownFormat(MediabotError):
    code = "unknown_format"
    default_message = "This link has no format with that id. Ask for its formats first."


class WontFit(MediabotError):
    code = "wont_fit"
    default_message = "No smaller copy of this media fits the limit."


class WorkerLost(MediabotError):
    code = "worker_lost"
    default_message = "The download was interrupted several times and was given up. Please try again."


class NotFound(MediabotError):
    code = "not_found"
    default_message = "No such job."


class Unavailable(MediabotError):
    code = "unavailable"
    default_message = "The service is busy or partly down. Please try again in a minute."


def human_size(num_bytes: float) -> str:
    """Sizes as people write them: 3.1 GB, 512 KB."""
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1000
    raise AssertionError("unreachable")


def human_limit(limit: int) -> str:
    """A size limit as the platform states it: Discord's are whole MiB, and it calls 10 MiB "10 MB"."""
    mib = 1024 * 1024
    return f"{limit // mib} MB" if limit and limit % mib == 0 else human_size(limit)


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    return f"{secs} s"


class InvalidRequest(MediabotError):
    code = "invalid_request"
    default_message = "The request is not valid."


class IdempotencyConflict(MediabotError):
    code = "idempotency_conflict"
    default_message = (
        "This Idempotency-Key was used in the last 24 hours for a different request. "
        "Send the same request again, or use a new key."
    )
