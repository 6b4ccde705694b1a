"""Sections as people write them, and the one sentence each impossible one gets."""

from __future__ import annotations

import pytest

from core.cuts.sections import (
    InvalidSection,
    Section,
    SectionTooLong,
    find_range_after_link,
    format_time,
    parse_section,
)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("1:20-1:45", "80.000-105.000"),
        ("80-105", "80.000-105.000"),
        ("1:20 – 1:45", "80.000-105.000"),  # a phone's en dash
        ("1:20 to 1:45", "80.000-105.000"),
        ("1:20", "80.000-"),
        ("1:20-", "80.000-"),
        ("0:01:20.5-0:01:45.25", "80.500-105.250"),
        ("1:02:03", "3723.000-"),
        ("90:00-95:00", "5400.000-5700.000"),  # minutes past 59 without hours
        ("80,5-81", "80.500-81.000"),  # a decimal comma
        ("80.0004-105", "80.000-105.000"),
    ],
)
def test_text_forms_give_one_canonical_key(text: str, key: str) -> None:
    assert parse_section(text).key() == key


@pytest.mark.parametrize(
    ("value", "section"),
    [
        ({"start": "1:20", "end": "1:45"}, Section(80.0, 105.0)),
        ({"start": 80, "end": 105.5}, Section(80.0, 105.5)),
        ({"start": "80"}, Section(80.0, None)),
        ({"end": "0:30"}, Section(0.0, 30.0)),
    ],
)
def test_the_apis_start_and_end(value: dict[str, object], section: Section) -> None:
    assert parse_section(value) == section


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("1:45-1:20", "The clip must end after it starts: 1:20 is not after 1:45."),
        ({"start": 105, "end": 80}, "The clip must end after it starts: 1:20 is not after 1:45."),
        ("1:75", "minutes and seconds go up to 59"),
        ("1:61:00", "minutes and seconds go up to 59"),
        ({"start": "soon"}, '"soon" is not a time'),
        ({"start": True}, "The clip should be written as start-end"),
        ({"start": -5}, "The clip should be written as start-end"),
        ({}, "A section needs a start, an end, or both."),
        ({"start": 1, "stop": 2}, "A section has only start and end, not stop."),
        ("from the middle", "The clip should be written as start-end"),
        ("-5", "The clip should be written as start-end"),
    ],
)
def test_what_cant_be_a_section_is_said_in_one_sentence(value: object, words: str) -> None:
    with pytest.raises(InvalidSection) as caught:
        parse_section(value)  # type: ignore[arg-type]
    assert words in caught.value.message
    assert caught.value.code == "invalid_section"
    assert caught.value.message.count(". ") == 0  # one sentence


def test_a_section_is_checked_against_the_media_and_the_limit() -> None:
    # the end past the media becomes its end; an open end too
    assert parse_section("1:00-9:00").check(duration=150.0) == Section(60.0, 150.0)
    assert parse_section("1:00").check(duration=150.0) == Section(60.0, 150.0)
    with pytest.raises(InvalidSection) as past:
        parse_section("5:00-5:30").check(duration=200.0)
    assert past.value.message == "The clip starts at 5:00, but the media is only 3:20 long."
    with pytest.raises(SectionTooLong) as too_long:
        parse_section("0:00-2:00:00").check(duration=3 * 3600.0, limit_s=3600)
    assert too_long.value.code == "too_long"
    assert too_long.value.message == "The clip is 2 h long; the limit is 1 h."
    # a long media is fine when the clip is within the limit
    assert parse_section("1:00:00-1:10:00").check(duration=5 * 3600.0, limit_s=3600).length == 600
    # an open end is measured against the media's own end
    with pytest.raises(SectionTooLong):
        parse_section("10").check(duration=4000.0, limit_s=3600)
    # with no duration known, only a closed section can be checked
    assert parse_section("10").check(duration=None, limit_s=5) == Section(10.0, None)


def test_a_range_written_after_a_link() -> None:
    found = find_range_after_link("look https://example.com/v?id=1 1:20-1:45 please")
    assert found is not None
    assert found.url == "https://example.com/v?id=1"
    assert found.section == Section(80.0, 105.0)
    assert "look https://example.com/v?id=1 1:20-1:45 please"[slice(*found.span)] == "1:20-1:45"
    assert find_range_after_link("https://example.com/v 1:20").section == Section(80.0, None)  # type: ignore[union-attr]
    assert find_range_after_link("https://example.com/v 80-105.").section == Section(80.0, 105.0)  # type: ignore[union-attr]
    # a lone number or words after a link are not a time
    for text in (
        "https://example.com/v 2",
        "https://example.com/v 5 to go",
        "https://example.com/v",
        "1:20-1:45",
    ):
        assert find_range_after_link(text) is None, text
    with pytest.raises(InvalidSection):
        find_range_after_link("https://example.com/v 1:45-1:20")


def test_the_variant_fits_the_jobs_column() -> None:
    longest = Section(29 * 24 * 3600.123, 30 * 24 * 3600.0)
    assert longest.variant(animation=True).startswith("gif:")
    assert len(longest.variant()) <= 64
    assert parse_section("80-105").variant() == "clip:80.000-105.000"


@pytest.mark.parametrize(
    ("seconds", "text"), [(5, "0:05"), (80, "1:20"), (3723, "1:02:03"), (80.5, "1:20.5"), (80.25, "1:20.25")]
)
def test_times_are_written_as_clocks(seconds: float, text: str) -> None:
    assert format_time(seconds) == text


@pytest.mark.parametrize(
    ("start", "end", "label"),
    [(80, 105, "1m20s-1m45s"), (0, 2, "0s-2s"), (3723.5, 3730, "1h02m03.5s-1h02m10s"), (5, None, "5s-end")],
)
def test_a_clips_file_name_says_its_part_without_colons_or_decimals(
    start: float, end: float | None, label: str
) -> None:
    assert Section.of(start, end).file_label() == label
