"""Memory a worker gives back to the system after each job."""

from __future__ import annotations

import ctypes
from typing import Any

_libc: Any = None


def trim_memory() -> None:
    """Give freed memory back to the OS after each job (glibc keeps it otherwise, and a worker's RSS
    creeps up job after job)."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    if _libc:
        _libc.malloc_trim(0)
