"""Which of a channel's listed entries are new: pure functions of the listing and what was seen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.net import normalize_url

# Entries remembered per subscription: enough that a deleted newest video does not make the whole listing
# look new (the check stops at the first remembered one it meets).
SEEN_KEPT = 50


def entry_key(entry: dict[str, Any]) -> str:
    return normalize_url(str(entry["url"]))


def new_entries(
    listed: Sequence[dict[str, Any]], seen: Sequence[str] | None, backfill: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """The entries to deliver, oldest first, and what is seen afterwards (newest first).

    `listed` is newest first, as channels list. The walk stops at the first entry already seen: nothing
    older is looked at. On the first check (`seen` is None) only the newest `backfill` entries are new:
    subscribing never sends the back catalogue unless asked."""
    keys = [entry_key(e) for e in listed]
    if seen is None:
        fresh = list(listed[:backfill])
    else:
        known = set(seen)
        fresh = []
        for entry, key in zip(listed, keys, strict=True):
            if key in known:
                break
            fresh.append(entry)
    remembered = list(dict.fromkeys([*keys, *(seen or [])]))[:SEEN_KEPT]
    fresh.reverse()
    return fresh, remembered
