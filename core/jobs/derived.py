"""Jobs made from another job's stored file: a clip ("clip:80.000-105.000"), a Telegram animation ("gif:..."),
the file split by its chapters ("chapters": a group, like a playlist, whose items are its chapters, each a
"chapter:N:80.000-105.000" job cut from the same stored download) and the file with sponsor segments removed or marked
("sb=remove:intro,selfpromo,sponsor"). The variant is part of the dedup key, so identical asks share one job;
the job's `source_job_id` is the full download it is made from (a fitted copy's "fit:" variant is the other
kind of variant, core.jobs.views.fit_variant)."""

from __future__ import annotations

from dataclasses import dataclass

from core.cuts.sections import Section, parse_section
from core.cuts.sponsorblock import CATEGORIES, SponsorChoice
from core.errors import InvalidRequest

CHAPTERS = "chapters"
CHAPTER = "chapter"


class CutRefused(InvalidRequest):
    """A cut that can't be made of this ask (two at once, an animation of sound, a playlist): 422 in the API."""

    code = "cut_refused"
    default_message = "This can't be cut that way."


_SPONSOR_PREFIX = "sb="


@dataclass(frozen=True)
class Derivation:
    """What a derived job makes from its source: exactly one of a section, a chapter split, a sponsor choice."""

    section: Section | None = None
    animation: bool = False
    split_chapters: bool = False
    sponsorblock: SponsorChoice | None = None
    # One chapter of a split (its `section`): the Nth, cut by stream copy as a split cuts.
    chapter: int | None = None

    @property
    def variant(self) -> str:
        if self.chapter is not None:
            assert self.section is not None
            return f"{CHAPTER}:{self.chapter}:{self.section.key()}"
        if self.section is not None:
            return self.section.variant(animation=self.animation)
        if self.split_chapters:
            return CHAPTERS
        assert self.sponsorblock is not None
        return self.sponsorblock.key()

    @property
    def counter(self) -> str:
        """The /metrics name of what was made: clip, animation, split, sponsor."""
        if self.chapter is not None:
            return "chapter"
        if self.section is not None:
            return "animation" if self.animation else "clip"
        return "split" if self.split_chapters else "sponsor"


def derivation(
    section: Section | None, *, animation: bool, split_chapters: bool, sponsorblock: SponsorChoice | None
) -> Derivation | None:
    """The one derivation a request asks for, None for a plain download. An animation is of a clip (from the
    start when no section was given)."""
    if animation and section is None:
        section = Section.of(0.0)
    asked = [section is not None, split_chapters, sponsorblock is not None]
    if sum(asked) > 1:
        raise CutRefused("Ask for one of a clip, a split by chapters or sponsor removal at a time.")
    if not any(asked):
        return None
    return Derivation(section, animation, split_chapters, sponsorblock)


def parse_variant(variant: str | None) -> Derivation | None:
    """A derived job's variant read back; None for a plain job or a fitted copy."""
    if not variant:
        return None
    if variant.startswith(("clip:", "gif:")):
        kind, _, key = variant.partition(":")
        return Derivation(section=parse_section(key), animation=kind == "gif")
    if variant.startswith(f"{CHAPTER}:"):
        _, index, key = variant.split(":", 2)
        return Derivation(section=parse_section(key), chapter=int(index))
    if variant == CHAPTERS:
        return Derivation(split_chapters=True)
    if variant.startswith(_SPONSOR_PREFIX):
        mode, _, categories = variant[len(_SPONSOR_PREFIX) :].partition(":")
        cats = tuple(c for c in categories.split(",") if c) or CATEGORIES
        return Derivation(sponsorblock=SponsorChoice(mode=mode, categories=cats))  # type: ignore[arg-type]
    return None


def chapter_title(index: int, count: int, name: str) -> str:
    """A chapter item's title, numbered as a playlist item is: "3/7 · Chapter name"."""
    return f"{index}/{count} · {name}"


def chapter_name(title: str | None) -> str:
    """The chapter's own name in a chapter item's title ("3/7 · Chapter name" -> "Chapter name")."""
    return (title or "").split(" · ", 1)[-1]


def sponsor_choice(value: str | None) -> SponsorChoice | None:
    """A person's "remove" / "mark" (None or "off": nothing)."""
    if value is None or value in ("", "off"):
        return None
    if value not in ("remove", "mark"):
        raise InvalidRequest('SponsorBlock must be "remove", "mark" or "off".')
    return SponsorChoice(mode=value)  # type: ignore[arg-type]
