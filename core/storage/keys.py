"""Storage keys and file names: safe names, a job's key, and the Content-Disposition that names a file."""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from urllib.parse import quote

log = logging.getLogger(__name__)

_SAFE_PUNCT = frozenset(" .-_()")
_MAX_NAME_BYTES = 150
_MAX_EXT_BYTES = 16
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{2,100}")


def _safe_char(ch: str) -> bool:
    # Letters, digits and combining marks (needed by Devanagari, Thai...) of any script.
    return ch in _SAFE_PUNCT or unicodedata.category(ch)[0] in "LNM"


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def safe_filename(filename: str) -> str:
    """The name with only unicode letters/digits/space/.-_() kept, at most ~150 UTF-8 bytes, extension kept."""
    name = unicodedata.normalize("NFC", filename)
    name = "".join(ch if _safe_char(ch) else "_" for ch in name)
    name = re.sub(r"_{2,}", "_", name).strip(" ._")
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > _MAX_EXT_BYTES:
        stem, ext = name, ""
    stem = _truncate_utf8(stem, _MAX_NAME_BYTES - len(ext.encode())).rstrip(" .")
    return (stem or "file") + ext


def make_key(job_id: str, filename: str, run: str | None = None) -> str:
    """Where a job's file is stored. `run` names one attempt at the job: two attempts (one that lost its
    lease and one that took over) never write, or clean up, each other's files."""
    if not _JOB_ID.fullmatch(job_id) or (run is not None and not _JOB_ID.fullmatch(run)):
        raise ValueError(f"unexpected job id {job_id!r} / run {run!r}")
    folder = f"{job_id[:2]}/{job_id}" + (f"/{run}" if run else "")
    return f"{folder}/{safe_filename(filename)}"


def check_key(key: str) -> str:
    """Refuse keys that are not plain relative paths (absolute, '..', empty segments, NUL, backslash)."""
    if not key or len(key.encode()) > 1024 or "\x00" in key or "\\" in key or key.startswith("/"):
        raise ValueError(f"invalid storage key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid storage key {key!r}")
    return key


_ASCII_KEEP = re.compile(r"[^A-Za-z0-9 !#$&'()+,.=@^_`{}~\[\]-]")

# RFC 5987 attr-char beyond quote()'s always-safe letters, digits and "_.-~".
_ATTR_SAFE = "!#$&+^`|"


def content_disposition(filename: str) -> str:
    """`attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded` (RFC 6266 / RFC 5987)."""
    decomposed = unicodedata.normalize("NFKD", filename)
    ascii_name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    ascii_name = re.sub(r"_{2,}", "_", _ASCII_KEEP.sub("_", ascii_name)).strip(" .")
    stem, ext = os.path.splitext(ascii_name)
    if not stem.strip("_ "):
        ascii_name = "download" + ext
    encoded = quote(unicodedata.normalize("NFC", filename), safe=_ATTR_SAFE)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"
