"""/download with start and end in Discord, end to end: the fake Discord, the real worker, the counter media."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.bots.test_discord import attachment, discord_bot
from tests.fakes.discord import FakeDiscord
from tests.support.chaptered import FPS, frame_number
from tests.support.media import ffprobe
from tests.support.sponsorblock import FakeSponsorBlock


async def test_download_with_start_and_end_attaches_the_clip(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        url = media_site.url("/counter.mp4") + "?discord=clip"
        it = await fake_discord.slash("download", {"url": url, "start": "0:03", "end": "7.5"})
        final = await env.final(it)
        path = attachment(final)
        assert abs(float(ffprobe(path)["format"]["duration"]) - 4.5) <= 0.1
        assert await asyncio.to_thread(frame_number, path, 0) == 3 * FPS
        assert "2 chapters" in final.json["content"]  # 0:03-0:07.5 spans "Opening" and "Middle part"

        bad = await fake_discord.slash("download", {"url": url, "start": "0:09", "end": "0:08"})
        answer = (await fake_discord.wait_for(lambda: fake_discord.callbacks(bad)))[0]
        assert answer.json["data"]["content"] == "The clip must end after it starts: 0:08 is not after 0:09."


async def test_settings_sponsor_default_applies_to_plain_links(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with FakeSponsorBlock() as sb:
        sb.add("Generic", "counter", [(6.0, 8.0, "sponsor"), (10.0, 11.0, "sponsor")], video_duration=16.0)
        async with discord_bot(fake_discord, tmp_path, sponsorblock_url=sb.url) as env:
            alice = fake_discord.make_user("alice")
            it = await fake_discord.slash("settings", {"sponsors": "remove"}, user=alice)
            answer = (await fake_discord.wait_for(lambda: fake_discord.callbacks(it)))[0]
            assert answer.json["data"]["content"].startswith(
                "Sponsor, self-promotion and intro segments of the links you send: removed."
            )
            url = media_site.url("/counter.mp4") + "?discord=sponsors"
            final = await env.final(await fake_discord.slash("download", {"url": url}, user=alice))
            assert "2 sponsor segments removed, 3 s saved" in final.json["content"]
            path = attachment(final)
            assert abs(float(ffprobe(path)["format"]["duration"]) - 13.0) <= 0.3
            # Asked otherwise for one link: kept.
            kept = await env.final(
                await fake_discord.slash("download", {"url": url, "sponsorblock": "keep"}, user=alice)
            )
            assert "sponsor" not in kept.json["content"]
