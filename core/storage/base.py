"""The Storage protocol: where finished files live (local disk or S3) and the links that hand them out.

Files move once (DESIGN.md section 6): the worker downloads into a temp dir, `save` renames the file into
place (local) or streams it to S3 in parts. Links are computed from the key on demand and never stored."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

MB = 1024 * 1024
# Where the health probe writes its test files.
PROBE_PREFIX = "_probe/"


class Storage(Protocol):
    name: str

    async def save(self, src: Path, key: str, *, filename: str, content_type: str | None = None) -> int: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int | None: ...

    async def link(self, key: str, *, filename: str, ttl_s: int | None = None) -> str: ...

    async def fetch(self, key: str, dest: Path) -> None: ...

    async def probe(self) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """The file on this machine's disk (it may be gone since); None when files live elsewhere (S3)."""
        ...

    def resolve_link(self, key: str, exp: str, name: str, sig: str, now: float | None = None) -> Path:
        """The file a signed link of ours names (web/routes/files.py serves it); LinkInvalid, LinkExpired,
        FileNotFoundError; NotFound from a storage whose links are served elsewhere (S3's presigned ones)."""
        ...
