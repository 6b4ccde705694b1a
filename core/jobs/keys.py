"""The keys that make identical asks share one job: the dedup key (link, kind, quality and choices), the
choice suffix of a media key, and the fingerprint that catches a reused idempotency key."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from core.jobs.choices import SubmitRequest

log = logging.getLogger(__name__)

# How long an idempotency key returns the request it first made; after that it starts a new one.
IDEMPOTENCY_TTL = timedelta(hours=24)


def new_id() -> str:
    return uuid.uuid4().hex


def choice_suffix(
    format_id: str | None = None,
    subtitles: Sequence[str] | None = (),
    audio_format: str | None = None,
    playable: bool | None = False,
) -> str:
    """What a person chose beyond kind and quality, as it enters the dedup and media keys. A playable video
    is a variant of its own: its file may be another format, or a conversion."""
    suffix = f"|f={format_id}" if format_id else ""
    suffix += f"|s={','.join(sorted(subtitles))}" if subtitles else ""
    suffix += "|p=h264" if playable else ""
    return suffix + (f"|a={audio_format}" if audio_format else "")


def dedup_key(
    cache_key: str,
    kind: str,
    quality: str,
    variant: str | None = None,
    *,
    format_id: str | None = None,
    subtitles: Sequence[str] | None = (),
    audio_format: str | None = None,
    playable: bool | None = False,
) -> str:
    key = f"{cache_key}|{kind}:{quality}{choice_suffix(format_id, subtitles, audio_format, playable)}"
    return f"{key}|{variant}" if variant else key


def fingerprint(req: SubmitRequest) -> str:
    """What a submission asked for, so a reused idempotency key with a different ask is caught."""
    asked: dict[str, Any] = {"url": req.text, "kind": req.kind, "quality": req.quality,
                             "callback_url": req.callback_url}  # fmt: skip
    if req.format_id or req.subtitles:
        asked.update(format_id=req.format_id, subtitles=sorted(req.subtitles))
    if req.audio_format:
        asked.update(audio_format=req.audio_format)
    if req.playable:
        asked.update(playable=True)
    if req.section is not None or req.animation:
        asked.update(section=req.section.key() if req.section else None, animation=req.animation)
    if req.split_chapters:
        asked.update(split_chapters=True)
    if req.sponsorblock is not None:
        asked.update(sponsorblock=req.sponsorblock.key())
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()
