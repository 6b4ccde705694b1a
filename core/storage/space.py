"""Free space: a download the disks have no room for is refused before it starts."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from core.config import Settings
from core.errors import StorageError, TooLarge
from core.i18n import N_
from core.storage.base import MB
from core.words import human_size

log = logging.getLogger(__name__)

# Left free beyond a download's own size: the database (SQLite sits in DATA_DIR by default), its journal and
# the other jobs share the disk, and a disk filled to the last byte fails them all.
SPACE_MARGIN = 16 * MB


def download_dirs(settings: Settings) -> tuple[Path, ...]:
    """Where a download takes room: the temp dir, and the files dir when storage is local."""
    return (settings.tmp_dir, settings.files_dir) if settings.storage == "local" else (settings.tmp_dir,)


def check_free_space(dirs: tuple[Path, ...], size: int) -> None:
    """Refuse a download of `size` bytes that the disks under `dirs` have no room for: TooLarge when it is
    larger than a whole disk, StorageError (out of space, try later) when it is larger than what is free.
    Blocking (statvfs): call it from a thread."""
    seen: set[int] = set()
    for directory in dirs:
        path = directory
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            device = path.stat().st_dev
            usage = shutil.disk_usage(path)
        except OSError as exc:
            log.warning("free space of %s unknown: %s", directory, exc)
            continue
        if device in seen:
            continue  # same disk as a directory already counted (local storage: the usual case)
        seen.add(device)
        if size > usage.total:
            raise TooLarge(
                N_("This file is {size}; this server has room for {room}.").format(
                    size=human_size(size), room=human_size(usage.total)
                )
            )
        if usage.free < size + SPACE_MARGIN:
            log.warning(
                "refusing a %s download: %s free on the disk of %s",
                human_size(size),
                human_size(usage.free),
                directory,
            )
            raise StorageError.out_of_space(size)
