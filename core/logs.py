"""Logging set-up, with secrets redacted from every record (bot tokens sit in Telegram API URLs)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# Telegram tokens (123456:ABC...), in URLs or alone, anything that looks like our API keys, and their stored
# digests (core.apikeys.hash_key).
_PATTERNS = [
    re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}"),
    re.compile(r"mb_[A-Za-z0-9_-]{20,}"),
    re.compile(r"h1:[A-Za-z0-9_-]{43}"),
]
# Database drivers log every statement with its parameters at DEBUG (aiosqlite; SQLAlchemy's engine at INFO):
# key digests, submitted links, cookies. They stay quiet at every level; DEBUG is for mediabot's own lines.
_SQL_LOGGERS = {"aiosqlite": logging.INFO, "asyncpg": logging.INFO, "sqlalchemy": logging.WARNING}


class RedactingFilter(logging.Filter):
    """Replaces secrets in the final message text. Applied when each record is created (see
    `install_redaction`), so every handler sees redacted text, pytest's caplog and third-party ones included."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 8]
        self.patterns: list[re.Pattern[str]] = list(_PATTERNS)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 8 and secret not in self.secrets:
            self.secrets.append(secret)

    def add_pattern(self, pattern: str | re.Pattern[str]) -> None:
        """Also redact whatever matches `pattern` (a front end's short-lived tokens, e.g. in webhook URLs)."""
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        if all(p.pattern != compiled.pattern for p in self.patterns):
            self.patterns.append(compiled)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        for pattern in self.patterns:
            text = pattern.sub("[REDACTED]", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return True


REDACTOR = RedactingFilter()
_installed = False


def install_redaction(secrets: Iterable[str] = ()) -> RedactingFilter:
    global _installed
    for secret in secrets:
        REDACTOR.add(secret)
    if not _installed:
        _installed = True
        base_factory = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = base_factory(*args, **kwargs)
            REDACTOR.filter(record)
            return record

        logging.setLogRecordFactory(factory)
    return REDACTOR


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> RedactingFilter:
    install_redaction(secrets)
    root = logging.getLogger()
    if not any(getattr(h, "_mediabot", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._mediabot = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name, floor in _SQL_LOGGERS.items():
        logging.getLogger(name).setLevel(floor)
    # Libraries that log every request at INFO: keep them at WARNING unless debugging.
    if level.upper() != "DEBUG":
        for name in (
            "httpx",
            "httpcore",
            "aiohttp.access",
            "taskiq",
            "werkzeug",
            "botocore",
            "urllib3",
            "alembic",
        ):
            logging.getLogger(name).setLevel(logging.WARNING)
    return REDACTOR
