"""One part of the extraction stack as the checks report it: a line of `mediabot doctor`, an entry of
/health/detailed's `extraction`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

Status = Literal["ok", "warn", "fail", "off"]


@dataclass(frozen=True)
class Part:
    """One part of the stack: whether it works, in a line."""

    key: str  # the name in /health/detailed
    label: str  # the name in `mediabot doctor`
    status: Status  # ok; warn: works, with a caveat; fail: a required part is broken; off: not configured
    version: str | None = None
    detail: str = ""  # what was found; never a path, URL or program output (health readers see it)
    advice: str | None = None  # for warn and fail: one sentence saying what to do
    local: str | None = None  # path, URL, program output: the operator's terminal only

    def public(self) -> dict[str, Any]:
        found: dict[str, Any] = {"status": self.status, "version": self.version, "detail": self.detail}
        if self.advice:
            found["advice"] = self.advice
        return {k: v for k, v in found.items() if v not in (None, "")}


def _version_of(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else -1 for p in re.split(r"[-.]", version))
