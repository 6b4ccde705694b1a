"""The Discord bot end to end: the real discord.py client connected to a fake Discord (tests/fakes/discord.py),
over mediabot's real services and worker, downloading from the local media site."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bots.discord.runner import running
from core.bootstrap import Services
from tests.fakes.discord import Call, FakeDiscord, Interaction
from tests.support.media import ffprobe
from tests.support.services import ROOT, make_settings, running_services, settings_env, wait_until

pytestmark = pytest.mark.timeout(60)

EPHEMERAL = 1 << 6


async def final_edit(fake: FakeDiscord, interaction: Interaction, timeout: float = 30) -> Call:
    """The edit that ended the reply: the one that removed the Cancel button."""

    def find() -> Call | None:
        done = [c for c in fake.edits(interaction.token) if (c.json or {}).get("components") == []]
        return done[-1] if done else None

    return await fake.wait_for(find, timeout)


async def progress_edits(
    fake: FakeDiscord, interaction: Interaction, count: int = 1, timeout: float = 30
) -> list[Call]:
    """Accepted edits of the reply that still carry the Cancel button, once there are `count` of them."""

    def find() -> list[Call] | None:
        edits = [c for c in fake.edits(interaction.token) if (c.json or {}).get("components")]
        return edits if len(edits) >= count else None

    return await fake.wait_for(find, timeout)


@dataclass
class Bot:
    fake: FakeDiscord
    services: Services

    async def final(self, interaction: Interaction, timeout: float = 30) -> Call:
        return await final_edit(self.fake, interaction, timeout)

    async def progress_edits(self, interaction: Interaction, count: int = 1) -> list[Call]:
        return await progress_edits(self.fake, interaction, count)

    async def delivered(self, request_id: str) -> None:
        async def check() -> bool:
            request, _ = await self.services.jobs.get_request(request_id)
            return request.delivered_at is not None

        await wait_until(check, timeout=10)

    async def requests(self, user: dict[str, Any]) -> list[Any]:
        items, _ = await self.services.jobs.list_requests("discord", user["id"])
        return items


def bot_settings(fake: FakeDiscord, tmp_path: Path, **overrides: Any) -> Any:
    # shutdown_grace_s=0: a download still running when a test ends is handed back at once, not waited for.
    return make_settings(
        tmp_path, discord_token=fake.token, discord_api_url=fake.api_url, shutdown_grace_s=0, **overrides
    )


@contextlib.asynccontextmanager
async def discord_bot(fake: FakeDiscord, tmp_path: Path, **overrides: Any) -> AsyncIterator[Bot]:
    settings = bot_settings(fake, tmp_path, **overrides)
    identified = len(fake.identifies)
    async with (
        running_services(settings) as services,
        running(services, guild_ready_timeout=0, edit_interval_s=0.2),
    ):
        await fake.wait_for(lambda: len(fake.identifies) > identified, timeout=15)
        yield Bot(fake, services)


def clip(media_site: Any) -> str:
    return media_site.url(f"/clip/{uuid.uuid4().hex[:12]}.mp4")


def slow(media_site: Any, rate: int) -> str:
    return media_site.url(f"/slow.mp4?rate={rate}&n={uuid.uuid4().hex[:8]}")


def attachment(call: Call) -> Path:
    assert len(call.files) == 1, call
    return call.files[0].path


async def test_download_shows_progress_then_attaches_the_video(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="discord")
    async with discord_bot(fake_discord, tmp_path) as env:
        assert {c["name"] for c in fake_discord.commands[None]} == {
            "download", "cancel", "settings", "Download media", "subscribe", "subscriptions", "unsubscribe", "language",
        }  # fmt: skip
        it = await fake_discord.slash(
            "download", {"url": slow(media_site, 12_000_000)}, attachment_size_limit=50 * 1024 * 1024
        )
        callback = (await fake_discord.wait_for(lambda: fake_discord.callbacks(it)))[0]
        assert callback.json["type"] == 5 and callback.status == 200, "deferred at once"
        assert callback.at - it.created < 1.0
        await env.progress_edits(it)
        final = await env.final(it)
        path = attachment(final)
        assert path.stat().st_size > 30_000_000
        assert {s["codec_type"] for s in ffprobe(path)["streams"]} == {"video", "audio"}
        assert any(
            "%" in c.json["content"] and "MB/s" in c.json["content"] for c in env.fake.edits(it.token)[:-1]
        )
        [(request, job)] = await env.requests(it.user)
        assert job.status == "done"
        await env.delivered(request.id)
    # discord.py logged the webhook calls (whose URLs hold the interaction token) and the gateway payloads.
    assert any("PATCH" in r.getMessage() and "/messages/" in r.getMessage() for r in caplog.records)
    assert fake_discord.token not in caplog.text
    assert it.token not in caplog.text


async def test_audio_is_attached_as_m4a_and_a_repeat_comes_from_the_cache(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        path = f"/clip/{uuid.uuid4().hex[:12]}.mp4"
        it = await fake_discord.slash("download", {"url": media_site.url(path), "kind": "audio"})
        final = await env.final(it)
        stored = final.files[0]
        assert stored.filename.endswith(".m4a")
        assert [s["codec_type"] for s in ffprobe(stored.path)["streams"]] == ["audio"]

        again = await fake_discord.slash("download", {"url": media_site.url(path), "kind": "audio"})
        final = await env.final(again)
        assert final.files[0].path.read_bytes() == stored.path.read_bytes()
        assert media_site.downloads(path) == 1
        [(request, _)] = await env.requests(again.user)
        assert request.outcome == "cached"


async def test_too_large_for_discord_gets_a_link(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        # Over the upload limit the interaction announces: no upload is even tried.
        small = await fake_discord.slash("download", {"url": clip(media_site)}, attachment_size_limit=100_000)
        final = await env.final(small)
        assert not final.files
        content = final.json["content"]
        assert f"Download it: {env.services.settings.public_url}/" in content and "expires <t:" in content
        assert not [c for c in fake_discord.edits(small.token, ok=False) if c.files]

        # The limit moves (boosts lapse, Discord changes it): a refused upload (error 40005) falls back to the link.
        fake_discord.reject_uploads(times=1, status=413, code=40005)
        refused = await fake_discord.slash("download", {"url": clip(media_site)})
        final = await env.final(refused)
        assert not final.files and "Download it: " in final.json["content"]
        [upload] = [c for c in fake_discord.edits(refused.token, ok=False) if c.files]
        assert upload.status == 413


async def test_an_upload_refused_for_another_reason_is_tried_again(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    """Discord answers the upload with a 400 that is not about its size: the delivery is tried again a few
    seconds later, and the file arrives."""
    async with discord_bot(fake_discord, tmp_path) as env:
        fake_discord.reject_uploads(times=1, status=400, code=50035)
        it = await fake_discord.slash("download", {"url": clip(media_site)})
        final = await env.final(it)
        assert {s["codec_type"] for s in ffprobe(attachment(final))["streams"]} == {"video", "audio"}
        [refused] = [c for c in fake_discord.edits(it.token, ok=False) if c.files and c.status == 400]
        assert final.at - refused.at >= 4.5, "tried again after a pause"
        [(request, _)] = await env.requests(it.user)
        await env.delivered(request.id)


async def test_message_context_menu_downloads_the_first_link(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path, discord_guild_ids=[fake_discord.guild_id]) as env:
        # With guild ids set, the commands go to those guilds (visible at once), not globally.
        assert None not in fake_discord.commands
        assert {c["name"] for c in fake_discord.commands[fake_discord.guild_id]} == {
            "download",
            "cancel",
            "settings",
            "Download media",
            "subscribe",
            "subscriptions",
            "unsubscribe",
            "language",
        }
        url = clip(media_site)
        it = await fake_discord.context_menu("Download media", f"look at this: {url} and {clip(media_site)}")
        final = await env.final(it)
        assert fake_discord.callbacks(it)[0].json["type"] == 5
        assert {s["codec_type"] for s in ffprobe(attachment(final))["streams"]} == {"video", "audio"}
        [(request, _)] = await env.requests(it.user)
        assert request.url == url

        nolink = await fake_discord.context_menu("Download media", "no link here")
        [answer] = await fake_discord.wait_for(lambda: fake_discord.callbacks(nolink))
        assert answer.json["type"] == 4 and answer.json["data"]["flags"] & EPHEMERAL
        assert answer.json["data"]["content"] == "That message has no link in it."


async def test_cancel_button_and_cancel_command(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        alice, bob = fake_discord.make_user("alice"), fake_discord.make_user("bob")
        first = await fake_discord.slash("download", {"url": slow(media_site, 1_000_000)}, user=alice)
        second = await fake_discord.slash("download", {"url": slow(media_site, 1_000_000)}, user=bob)
        edit = (await env.progress_edits(first))[-1]
        [button] = fake_discord.buttons(edit.json)
        assert button["custom_id"].startswith("mediabot:cancel:")
        await env.progress_edits(second)

        # Someone else's click is refused, privately.
        other = await fake_discord.click(first.message_id or "", button["custom_id"], user=bob)
        [refusal] = await fake_discord.wait_for(lambda: fake_discord.callbacks(other))
        assert refusal.json["type"] == 4 and refusal.json["data"]["flags"] & EPHEMERAL

        click = await fake_discord.click(first.message_id or "", button["custom_id"], user=alice)
        [update] = await fake_discord.wait_for(lambda: fake_discord.callbacks(click))
        assert update.json["type"] == 7 and update.status == 200
        assert (
            update.json["data"]["content"].endswith("Cancelled.") and update.json["data"]["components"] == []
        )
        [(request, job)] = await env.requests(alice)
        assert request.status == "cancelled"
        await wait_until(lambda: _job_status(env, job.id, "cancelled"), timeout=15)
        edits_after = len(fake_discord.edits(first.token))
        await asyncio.sleep(0.5)
        assert len(fake_discord.edits(first.token)) == edits_after, "no progress edit after the cancel"
        assert fake_discord.messages[first.message_id or ""]["content"].endswith("Cancelled.")

        command = await fake_discord.slash("cancel", user=bob)
        [answer] = await fake_discord.wait_for(lambda: fake_discord.callbacks(command))
        assert answer.json["type"] == 4 and answer.json["data"]["flags"] & EPHEMERAL
        assert answer.json["data"]["content"] == "Cancelled 1 download."
        final = await env.final(second)
        assert final.json["content"].endswith("Cancelled.")
        [(request, job)] = await env.requests(bob)
        await wait_until(lambda: _job_status(env, job.id, "cancelled"), timeout=15)


async def _job_status(env: Bot, job_id: str, status: str) -> bool:
    return (await env.services.jobs.get_job(job_id)).status == status


async def test_errors_are_one_sentence(fake_discord: FakeDiscord, tmp_path: Path, media_site: Any) -> None:
    async with discord_bot(fake_discord, tmp_path, user_max_concurrent=1) as env:
        typo = await fake_discord.slash("download", {"url": "not a link"})
        [answer] = await fake_discord.wait_for(lambda: fake_discord.callbacks(typo))
        assert answer.json["type"] == 4 and answer.json["data"]["flags"] & EPHEMERAL
        assert (
            answer.json["data"]["content"]
            == "That doesn't look like a link: it should start with http:// or https://."
        )

        nomedia = await fake_discord.slash("download", {"url": media_site.url("/nomedia.html")})
        final = await env.final(nomedia)
        [(request, job)] = await env.requests(nomedia.user)
        assert job.status == "failed" and job.error is not None
        assert final.json["content"].splitlines()[-1] == job.error.message
        assert job.error.code == "unsupported_url"

        # A per-user limit, answered in the reply.
        user = fake_discord.make_user("carol")
        running_one = await fake_discord.slash("download", {"url": slow(media_site, 1_000_000)}, user=user)
        await env.progress_edits(running_one)
        second = await fake_discord.slash("download", {"url": clip(media_site)}, user=user)
        edit = await fake_discord.wait_for(lambda: fake_discord.edits(second.token))
        assert (
            edit[0].json["content"]
            == "You already have 1 download running. Wait for it to finish, or use /cancel."
        )


async def test_rate_limited_progress_edit_is_retried_and_the_file_still_arrives(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        it = await fake_discord.slash(
            "download", {"url": slow(media_site, 10_000_000)}, attachment_size_limit=50 * 1024 * 1024
        )
        await env.progress_edits(it)
        fake_discord.rate_limit(r"^PATCH /webhooks/\d+/[^/]+/messages/", times=1, retry_after=1.0)
        final = await env.final(it)
        assert {s["codec_type"] for s in ffprobe(attachment(final))["streams"]} == {"video", "audio"}
        calls = fake_discord.webhook_calls(it.token, "PATCH")
        [limited] = [i for i, c in enumerate(calls) if c.status == 429]
        retry = calls[limited + 1]
        assert retry.at - calls[limited].at >= 0.95, "retry_after was respected"
        assert retry.status == 200


async def test_after_the_interaction_token_expires_the_result_is_posted_in_the_channel_or_a_dm(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    fake_discord.token_ttl_s = 2.0  # Discord: 15 minutes
    fake_discord.forbid_channel(fake_discord.second_channel_id)
    big = 50 * 1024 * 1024
    async with discord_bot(fake_discord, tmp_path, discord_interaction_ttl_s=1.5) as env:
        here = await fake_discord.slash(
            "download", {"url": slow(media_site, 10_000_000)}, attachment_size_limit=big
        )
        closed = await fake_discord.slash(
            "download", {"url": slow(media_site, 10_000_000)}, channel_id=fake_discord.second_channel_id,
            attachment_size_limit=big,
        )  # fmt: skip
        [post] = await fake_discord.wait_for(lambda: fake_discord.channel_posts(fake_discord.channel_id), 30)
        assert post.json["content"].startswith(f"<@{here.user['id']}> ")
        assert [str(u) for u in post.json["allowed_mentions"]["users"]] == [here.user["id"]]
        assert str(post.json["message_reference"]["message_id"]) == here.message_id
        assert {s["codec_type"] for s in ffprobe(attachment(post))["streams"]} == {"video", "audio"}

        dm_channel = await fake_discord.wait_for(lambda: fake_discord.dm_channels.get(closed.user["id"]), 30)
        [dm] = await fake_discord.wait_for(lambda: fake_discord.channel_posts(dm_channel), 30)
        assert len(dm.files) == 1
        for it in (here, closed):
            assert all(c.status == 200 for c in fake_discord.webhook_calls(it.token)), (
                "no edit with a dead token"
            )
            [(request, _)] = await env.requests(it.user)
            await env.delivered(request.id)


async def test_restart_resumes_delivery_and_the_cancel_button_survives(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: Any
) -> None:
    settings = bot_settings(fake_discord, tmp_path)
    big = 50 * 1024 * 1024
    async with running_services(settings) as services:
        async with running(services, guild_ready_timeout=0, edit_interval_s=0.2):
            await fake_discord.wait_for(lambda: fake_discord.identifies)
            env = Bot(fake_discord, services)
            finishing_url = media_site.gated_url()  # held until the first bot has stopped
            finishing = await fake_discord.slash(
                "download", {"url": finishing_url}, attachment_size_limit=big
            )
            waiting = await fake_discord.slash("download", {"url": slow(media_site, 1_000_000)})
            await env.progress_edits(finishing)
            button = fake_discord.buttons((await env.progress_edits(waiting))[-1].json)[0]
        assert not [c for c in fake_discord.edits(finishing.token) if c.files], "stopped before the end"
        media_site.open_gate(finishing_url)

        async with running(services, guild_ready_timeout=0, edit_interval_s=0.2):
            await fake_discord.wait_for(lambda: len(fake_discord.identifies) == 2)
            final = await env.final(finishing)
            assert {s["codec_type"] for s in ffprobe(attachment(final))["streams"]} == {"video", "audio"}

            click = await fake_discord.click(waiting.message_id or "", button["custom_id"], user=waiting.user)
            [update] = await fake_discord.wait_for(lambda: fake_discord.callbacks(click))
            assert update.json["type"] == 7 and update.json["data"]["content"].endswith("Cancelled.")


def spawn(role: str, env: dict[str, str], log_file: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mediabot", role], env=env, stdout=log_file, stderr=subprocess.STDOUT,
        cwd=str(ROOT), start_new_session=True,
    )  # fmt: skip


async def test_as_separate_processes_on_redis_and_postgres(
    fake_discord: FakeDiscord,
    tmp_path: Path,
    media_site: Any,
    redis_url: str,
    pg_url: str,
    worker_processes: Any,
) -> None:
    """`mediabot discord` and `mediabot worker` as processes sharing Redis and PostgreSQL."""
    settings = bot_settings(fake_discord, tmp_path, database_url=pg_url, redis_url=redis_url)
    worker_processes(settings)
    env = {**settings_env(settings), "MEDIABOT_LOG_LEVEL": "DEBUG"}
    log_path = tmp_path / "discord.log"
    with log_path.open("wb") as log_file:
        proc = spawn("discord", env, log_file)
        try:
            await fake_discord.wait_for(lambda: fake_discord.identifies or proc.poll() is not None, 30)
            assert proc.poll() is None, log_path.read_text()
            it = await fake_discord.slash("download", {"url": clip(media_site)})
            final = await final_edit(fake_discord, it)
            assert {s["codec_type"] for s in ffprobe(attachment(final))["streams"]} == {"video", "audio"}
            assert fake_discord.callbacks(it)[0].json["type"] == 5
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                code = await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                raise
    text = log_path.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert "INTERACTION_CREATE" in text and "/messages/" in text, "DEBUG logs of the gateway and webhooks"
    assert fake_discord.token not in text
    assert it.token not in text
