"""Local storage: files under DATA_DIR/files, served through signed, expiring links (web/routes/files.py)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import logging
import os
import re
import secrets
import shutil
import stat as stat_module
import time
from pathlib import Path
from urllib.parse import quote

from core.config import Settings
from core.errors import LinkExpired, LinkInvalid, StorageError
from core.i18n import N_, _
from core.storage.base import PROBE_PREFIX
from core.storage.keys import check_key

log = logging.getLogger(__name__)


class LocalStorage:
    """Files under settings.files_dir, served by the web app through signed, expiring links."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._root = settings.files_dir
        self._key_bytes: bytes | None = None

    def _path(self, key: str) -> Path:
        return self._root / check_key(key)

    def local_path(self, key: str) -> Path | None:
        """Where a stored file lives on this machine (for the CLI and for serving it)."""
        return self._path(key)

    # save ---------------------------------------------------------------------------------------------------

    async def save(self, src: Path, key: str, *, filename: str, content_type: str | None = None) -> int:
        dest = self._path(key)
        try:
            return await asyncio.to_thread(self._save_sync, Path(src), dest)
        except OSError as exc:
            log.warning("storing %s as %s failed: %s", src, key, exc)
            raise StorageError.from_os_error(exc) from exc

    def _save_sync(self, src: Path, dest: Path) -> int:
        for attempt in range(3):
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(src, dest)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    self._copy_into_place(src, dest)
                return dest.stat().st_size
            except FileNotFoundError:
                # A concurrent delete() may have pruned the (then empty) parent between mkdir and rename.
                if attempt == 2 or not src.exists():
                    self._prune(dest.parent)
                    raise
            except OSError:
                self._prune(dest.parent)
                raise
        raise AssertionError("unreachable")

    def _copy_into_place(self, src: Path, dest: Path) -> None:
        """Cross-device move: copy to a hidden temp name next to dest, fsync, rename, then drop the source."""
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        try:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            src.unlink()
        except OSError as exc:
            log.warning("could not remove %s after copying it into storage: %s", src, exc)

    def _prune(self, directory: Path) -> None:
        """Remove empty directories from `directory` up to, not including, files_dir."""
        root = self._root
        while directory != root and root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    # reads and deletes --------------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(self._delete_sync, path)
        except OSError as exc:
            log.warning("deleting %s failed: %s", key, exc)
            raise StorageError(N_("The file could not be deleted. Please try again later.")) from exc

    def _delete_sync(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def size(self, key: str) -> int | None:
        path = self._path(key)

        def stat() -> int | None:
            try:
                st = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            return st.st_size if stat_module.S_ISREG(st.st_mode) else None

        try:
            return await asyncio.to_thread(stat)
        except OSError as exc:
            raise StorageError(N_("The file could not be read. Please try again later.")) from exc

    async def fetch(self, key: str, dest: Path) -> None:
        """Copy the stored file to dest; FileNotFoundError when there is none."""
        path = self._path(key)

        def copy() -> None:
            if not path.is_file():
                raise FileNotFoundError(key)
            try:
                shutil.copyfile(path, dest)
            except BaseException:
                Path(dest).unlink(missing_ok=True)
                raise

        try:
            await asyncio.to_thread(copy)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and not path.is_file():
                raise FileNotFoundError(key) from None
            log.warning("fetching %s failed: %s", key, exc)
            raise StorageError(N_("The file could not be read. Please try again later.")) from exc

    async def probe(self) -> None:
        """Write a file in tmp_dir, move it into files_dir, read it back, compare and delete it."""
        try:
            await asyncio.to_thread(self._probe_sync)
        except OSError as exc:
            log.warning("local storage probe failed: %s", exc)
            raise StorageError(
                _("The file storage is not working ({reason}).").format(reason=_reason(exc))
            ) from exc

    def _probe_sync(self) -> None:
        payload = secrets.token_bytes(32)
        dest = self._path(f"{PROBE_PREFIX}{secrets.token_hex(8)}")
        tmp_dir = self._settings.tmp_dir
        tmp_dir.mkdir(parents=True, exist_ok=True)
        src = tmp_dir / f"probe-{secrets.token_hex(8)}"
        try:
            src.write_bytes(payload)
            self._save_sync(src, dest)
            if dest.read_bytes() != payload:
                raise StorageError(N_("The file storage returned different bytes than were written."))
            if tmp_dir.stat().st_dev != self._root.stat().st_dev:
                log.warning("tmp_dir and files_dir are on different filesystems: every save copies the file")
        finally:
            src.unlink(missing_ok=True)
            dest.unlink(missing_ok=True)
            self._prune(dest.parent)

    # links --------------------------------------------------------------------------------------------------

    def _signature(self, key: str, exp: str, name: str) -> str:
        if self._key_bytes is None:
            # Read (or generated into DATA_DIR) on first use, not when the service is built.
            self._key_bytes = self._settings.signing_key()
        message = "\x00".join(("v1", key, exp, name)).encode()
        return hmac.new(self._key_bytes, message, hashlib.sha256).hexdigest()

    async def link(self, key: str, *, filename: str, ttl_s: int | None = None) -> str:
        check_key(key)
        if "\x00" in filename:
            raise ValueError("filename contains NUL")
        ttl = self._settings.link_ttl_s if ttl_s is None else ttl_s
        exp = str(int(time.time()) + ttl)
        sig = self._signature(key, exp, filename)
        path = "/".join(quote(part, safe="") for part in key.split("/"))
        return f"{self._settings.public_url}/files/{path}?exp={exp}&name={quote(filename, safe='')}&sig={sig}"

    def resolve_link(self, key: str, exp: str, name: str, sig: str, now: float | None = None) -> Path:
        """The file a signed link points at; LinkInvalid, LinkExpired or FileNotFoundError otherwise.

        key, exp, name and sig are the decoded path remainder after /files/ and the query values.
        """
        if not re.fullmatch(r"[0-9]{1,12}", exp or "") or not re.fullmatch(r"[0-9a-fA-F]{64}", sig or ""):
            raise LinkInvalid()
        if "\x00" in key or "\x00" in name:
            raise LinkInvalid()
        if not hmac.compare_digest(self._signature(key, exp, name), sig.lower()):
            raise LinkInvalid()
        if (time.time() if now is None else now) > int(exp):
            raise LinkExpired()
        try:
            check_key(key)
        except ValueError:
            raise LinkInvalid() from None
        root = Path(os.path.realpath(self._root))
        real = Path(os.path.realpath(self._root / key))
        if not real.is_relative_to(root) or real == root:
            raise LinkInvalid()
        if not real.is_file():
            raise FileNotFoundError(key)
        return real


def unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s after uploading it: %s", path, exc)


def _reason(exc: BaseException) -> str:
    """A short, path-free description of an error for health checks."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
    return type(exc).__name__
