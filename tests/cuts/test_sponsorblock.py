"""SponsorBlock: the client against a fake API on 127.0.0.1 (what it asks, what it keeps, how it fails), the
delivery's note, and segments removed from (or marked in) a real file by yt-dlp's ModifyChapters
post-processor on a worker thread."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import pytest

from core.cuts.sponsorblock import (
    Segment,
    SponsorBlockClient,
    SponsorBlockUnavailable,
    SponsorChoice,
    matching_duration,
    parse_segments,
    saved_note,
    service_for,
    sponsor_chapters,
)
from core.media.sponsor_removal import apply_segments
from tests.support.chaptered import COUNTER_SECONDS, FPS, ChapteredMedia, frame_numbers
from tests.support.media import ffprobe, ffprobe_chapters
from tests.support.sponsorblock import FakeSponsorBlock

pytestmark = pytest.mark.timeout(120)


async def test_the_client_asks_for_the_media_and_keeps_the_chosen_categories(
    sponsorblock: FakeSponsorBlock,
) -> None:
    sponsorblock.add(
        "Generic", "clip-1",
        [(12.0, 20.0, "intro"), (1.5, 4.0, "sponsor"), (30.0, 31.0, "outro"), (40.0, 45.0, "selfpromo")],
        video_duration=60.0,
    )  # fmt: skip
    sponsorblock.add("Generic", "clip-1", [(50.0, 51.0, "sponsor")], action_type="mute")
    client = SponsorBlockClient(sponsorblock.url)
    try:
        found = await client.segments("clip-1", service=service_for("Generic"))
        only_sponsor = await client.segments("clip-1", service="Generic", categories=["sponsor"])
    finally:
        await client.close()
    assert [(s.start, s.end, s.category) for s in found] == [
        (1.5, 4.0, "sponsor"), (12.0, 20.0, "intro"), (40.0, 45.0, "selfpromo"),
    ]  # fmt: skip
    assert all(s.video_duration == 60.0 and s.uuid for s in found)
    assert [s.category for s in only_sponsor] == ["sponsor"]
    first = sponsorblock.queries[0]
    assert (first.video_id, first.service) == ("clip-1", "Generic")
    assert first.categories == ["sponsor", "selfpromo", "intro"]
    assert first.action_types == ["skip"]


async def test_unknown_media_has_no_segments(sponsorblock: FakeSponsorBlock) -> None:
    sponsorblock.add("YouTube", "known", [(1.0, 2.0, "sponsor")])
    client = SponsorBlockClient(sponsorblock.url)
    try:
        assert await client.segments("unknown", service="YouTube") == []
        # the same id on another service is another video
        assert await client.segments("known", service="Generic") == []
        assert len(await client.segments("known", service=service_for("Youtube"))) == 1
        assert service_for("youtube") == "YouTube" and service_for("Generic") == "Generic"
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("misbehaviour", "timeout_s"),
    [
        ({"delay_s": 2.0}, 0.3),  # too slow
        ({"body": b"<html>not json</html>"}, 5.0),
        ({"status": 502, "body": b"Bad Gateway"}, 5.0),
        ({"body": b"[" * 2_000_000}, 5.0),  # far too big
    ],
)
async def test_an_unusable_answer_is_unavailable_not_a_crash(
    sponsorblock: FakeSponsorBlock, misbehaviour: dict[str, object], timeout_s: float
) -> None:
    sponsorblock.misbehave("vid", **misbehaviour)  # type: ignore[arg-type]
    client = SponsorBlockClient(sponsorblock.url, timeout_s=timeout_s)
    try:
        with pytest.raises(SponsorBlockUnavailable) as caught:
            await client.segments("vid", service="Generic")
    finally:
        await client.close()
    assert caught.value.message == "SponsorBlock did not answer, so no segments were removed."


async def test_a_server_that_is_down_is_unavailable() -> None:
    api = FakeSponsorBlock()
    await api.start()
    url = api.url
    await api.stop()
    client = SponsorBlockClient(url, timeout_s=2.0)
    try:
        with pytest.raises(SponsorBlockUnavailable):
            await client.segments("vid", service="YouTube")
    finally:
        await client.close()


def test_untrusted_answers_keep_only_sane_segments() -> None:
    data = [
        {"segment": [1, 2], "category": "sponsor", "UUID": "a"},
        {"segment": [1, 2], "category": "sponsor", "UUID": "a"},  # the same segment twice
        {"segment": [5, 3], "category": "sponsor", "UUID": "b"},  # ends before it starts
        {"segment": [-1, 3], "category": "sponsor", "UUID": "c"},
        {"segment": ["1", 3], "category": "sponsor", "UUID": "d"},
        {"segment": [1, True], "category": "sponsor", "UUID": "e"},
        {"segment": [1, 2, 3], "category": "sponsor", "UUID": "f"},
        {"segment": [4, 6], "category": "filler", "UUID": "g"},  # not asked for
        {"segment": [7, 8], "category": "intro", "UUID": "h", "actionType": "poi"},
        "nonsense",
        {"segment": [9, 10.5], "category": "intro", "UUID": "i", "videoDuration": 0},
    ]
    assert [(s.start, s.end, s.uuid, s.video_duration) for s in parse_segments(data)] == [
        (1.0, 2.0, "a", None), (9.0, 10.5, "i", None),
    ]  # fmt: skip
    assert parse_segments({"error": "x"}) == []


def test_segments_of_another_length_of_video_are_dropped() -> None:
    segments = [
        Segment(0.4, 10.0, "intro", "a", 300.0),  # starts within a second: from 0
        Segment(100.0, 110.0, "sponsor", "b", 330.0),  # submitted for another upload
        Segment(290.0, 299.5, "selfpromo", "c", 300.2),  # ends within a second of the end: to the end
        Segment(50.0, 60.0, "sponsor", "d", None),  # length unknown: kept
    ]
    kept = matching_duration(segments, 300.0)
    assert [(s.uuid, s.start, s.end) for s in kept] == [
        ("a", 0.0, 10.0),
        ("c", 290.0, 300.0),
        ("d", 50.0, 60.0),
    ]
    chapters = sponsor_chapters(segments, 300.0)
    assert chapters[0] == {
        "start_time": 0.0, "end_time": 10.0, "category": "intro", "title": "Intermission/Intro Animation",
        "type": "skip", "_categories": [("intro", 0.0, 10.0, "Intermission/Intro Animation")],
    }  # fmt: skip


def test_the_delivery_says_what_was_removed_and_how_long_it_was() -> None:
    two = [Segment(10.0, 40.0, "sponsor"), Segment(100.0, 142.0, "sponsor")]
    assert saved_note(two).text == "2 sponsor segments removed, 1:12 saved"
    assert saved_note(two).saved_s == 72.0
    mixed = [Segment(0.0, 20.0, "intro"), Segment(10.0, 30.0, "sponsor"), Segment(50.0, 55.0, "selfpromo")]
    # the overlap (10-20) is saved once
    assert saved_note(mixed).text == "3 segments (1 intro, 1 sponsor, 1 self-promotion) removed, 35 s saved"
    assert saved_note([Segment(5.0, 9.0, "intro")], mode="mark").text == "1 intro segment marked as chapters"
    assert saved_note([]).text is None
    assert saved_note([Segment(3600.0, 7330.0, "sponsor")]).text == "1 sponsor segment removed, 1:02:10 saved"


def test_the_choice_is_a_canonical_key() -> None:
    assert (
        SponsorChoice("remove", ("sponsor", "intro", "selfpromo")).key()
        == "sb=remove:intro,selfpromo,sponsor"
    )
    assert SponsorChoice("mark", ("sponsor",)).key() == "sb=mark:sponsor"
    with pytest.raises(ValueError):
        SponsorChoice("skip")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SponsorChoice("remove", ("outro",))


@pytest.mark.parametrize(
    ("segments", "exact"),
    [
        # on keyframes (every 2 s in the counter media): a stream copy removes exactly them
        ([(6.0, 8.0, "sponsor"), (12.0, 14.0, "intro")], False),
        # off keyframes: only a re-encode with keyframes forced at the cuts does
        ([(5.0, 7.0, "sponsor"), (11.4, 12.4, "intro")], True),
    ],
)
async def test_segments_from_the_api_are_removed_from_a_real_file(
    sponsorblock: FakeSponsorBlock, chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path,
    segments: list[tuple[float, float, str]], exact: bool,
) -> None:  # fmt: skip
    """The local fake serves two segments for the media's id; yt-dlp's ModifyChaptersPP cuts them on a worker
    thread: the file is shorter by what they cover, what follows each cut is what followed the segment, and
    the file's own chapters move up."""
    sponsorblock.add("Generic", "counter", segments, video_duration=16.0)
    client = SponsorBlockClient(sponsorblock.url)
    try:
        found = await client.segments("counter", service=service_for("Generic"))
    finally:
        await client.close()
    copy = tmp_path / "counter.mp4"
    shutil.copyfile(chaptered.video, copy)
    applied = await asyncio.to_thread(
        apply_segments, copy, found, SponsorChoice("remove"), ffmpeg=ffmpeg, cancel=threading.Event(),
        title="Counter", exact=exact,
    )  # fmt: skip
    removed = sum(end - start for start, end, _ in segments)
    after = float(ffprobe(copy)["format"]["duration"])
    assert abs((COUNTER_SECONDS - after) - removed) <= 0.2, after
    assert abs(applied.removed_s - removed) <= 0.2
    # Every kept frame is there, in order, and of the removed ones at most the two stray frames that FFmpeg's
    # concat demuxer leaves at each join (B-frames of the piece before). Off keyframes without `exact`, up to
    # a GOP (50 frames) of each segment would stay.
    shown = frame_numbers(copy)
    removed_frames = {n for start, end, _ in segments for n in range(round(start * FPS), round(end * FPS))}
    kept = [n for n in range(COUNTER_SECONDS * FPS) if n not in removed_frames]
    assert [n for n in shown if n not in removed_frames] == kept
    assert len([n for n in shown if n in removed_frames]) <= 2 * len(segments), shown
    chapters = [(c["tags"]["title"], round(float(c["start_time"]), 1)) for c in ffprobe_chapters(copy)]
    first_cut = segments[0][1] - segments[0][0]
    assert chapters == [
        ("Opening", 0.0),
        ("Middle part", 4.0),
        ("Credits", round(12.0 - first_cut - (0 if segments[1][0] >= 12 else 12.0 - segments[1][0]), 1)),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter.mp4"]  # no .uncut, .temp or .meta left
    assert (
        saved_note(found, duration=COUNTER_SECONDS).text
        == f"2 segments (1 sponsor, 1 intro) removed, {round(removed)} s saved"
    )


async def test_marked_segments_become_chapters_and_nothing_is_cut(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path
) -> None:
    copy = tmp_path / "counter.m4a"
    shutil.copyfile(chaptered.audio, copy)
    await asyncio.to_thread(
        apply_segments, copy, [Segment(6.0, 8.0, "sponsor", "a", 16.0)], SponsorChoice("mark"),
        ffmpeg=ffmpeg, cancel=threading.Event(),
    )  # fmt: skip
    assert abs(float(ffprobe(copy)["format"]["duration"]) - COUNTER_SECONDS) <= 0.1
    titles = [c["tags"]["title"] for c in ffprobe_chapters(copy)]
    assert titles == ["Opening", "Middle part", "[SponsorBlock]: Sponsor", "Middle part", "Credits"]


async def test_a_file_without_chapters_stays_without(
    ffmpeg: str, tmp_path: Path, chaptered: ChapteredMedia
) -> None:
    copy = tmp_path / "plain.mp4"
    proc = await asyncio.create_subprocess_exec(
        ffmpeg,
        "-v",
        "error",
        "-nostdin",
        "-i",
        str(chaptered.video),
        "-map_chapters",
        "-1",
        "-c",
        "copy",
        str(copy),
    )
    assert await proc.wait() == 0
    await asyncio.to_thread(
        apply_segments, copy, [Segment(2.0, 4.0, "sponsor")], SponsorChoice("remove"), ffmpeg=ffmpeg,
        cancel=threading.Event(),
    )  # fmt: skip
    assert ffprobe_chapters(copy) == []
    assert abs(float(ffprobe(copy)["format"]["duration"]) - (COUNTER_SECONDS - 2.0)) <= 0.2
