"""Inline mode end to end: "@bot LINK" typed in some chat, against the fake Bot API server (inline queries,
answerInlineQuery, chosen inline results, inline messages edited by their id), the real job service and
worker, and the local media site."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bots.telegram import texts
from bots.telegram.runner import running
from core.errors import UnsupportedUrl
from tests.bots.test_telegram import clip, media_call, slow, telegram_bot
from tests.bots.test_telegram_media import buttons, callback_answer
from tests.bots.test_telegram_planner import delivered
from tests.fakes.telegram import ALICE, BOB, FakeTelegram
from tests.support.media_site import MediaSite
from tests.support.services import make_settings, running_services, wait_until

pytestmark = pytest.mark.timeout(90)

STORAGE_CHAT = -100900


async def test_cached_media_is_the_answer_at_once_and_a_query_without_a_link_gets_a_hint(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    url = clip(media_site)
    async with telegram_bot(tmp_path, tg) as bot:  # no storage chat
        # Nothing Telegram holds yet, and nowhere to upload a new file for an inline message: no results,
        # and the button above them says how to get it.
        query = tg.inline_query(url)
        answer = await tg.inline_answer(query)
        assert answer["results"] == []
        assert answer["button"]["text"] == texts.INLINE_NOT_READY

        asked = tg.send(url)
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=30)
        await wait_until(lambda: delivered(bot.services))

        # Now Telegram holds it: anyone's inline query for it is answered with that file, nothing downloaded.
        hits = media_site.hits(urlsplit(url).path)
        query = tg.inline_query(url, user=BOB, chat_type="supergroup")
        answer = await tg.inline_answer(query)
        [result] = answer["results"]
        assert result["type"] == "video"
        assert result["video_file_id"] == video.result["video"]["file_id"]
        assert answer["is_personal"] is True
        calls = len(tg.calls)
        tg.choose_inline(query, result, user=BOB)  # Telegram sends it; nothing left for the bot to do
        await asyncio.sleep(0.3)
        assert [c.method for c in tg.calls[calls:] if c.method != "getUpdates"] == []
        assert media_site.hits(urlsplit(url).path) == hits
        assert len(tg.calls_to("sendVideo")) == 1

        # Words without a link: the hint, no error.
        query = tg.inline_query("cats")
        answer = await tg.inline_answer(query)
        assert answer["results"] == [] and answer["button"]["text"] == texts.INLINE_HINT


async def test_an_uncached_link_downloads_into_the_storage_chat_and_becomes_the_inline_message(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    url = slow(media_site, rate=8_000_000)  # ~30 MB in ~4 s: progress to show
    async with telegram_bot(tmp_path, tg, telegram_storage_chat=STORAGE_CHAT) as bot:
        query = tg.inline_query(url, chat_type="group")
        answer = await tg.inline_answer(query)
        [result] = answer["results"]
        assert result["type"] == "article" and result["id"] == "dv"
        assert result["input_message_content"]["message_text"] == f"{texts.INLINE_DOWNLOADING}\n{url}"
        # The keyboard is what makes Telegram report the inline message's id.
        assert result["reply_markup"]["inline_keyboard"][0][0]["text"] == texts.INLINE_WAIT_BUTTON
        inline_id = tg.choose_inline(query, result)
        assert inline_id is not None

        media = await tg.wait_call(
            "editMessageMedia", lambda c: c.get("inline_message_id") == inline_id, timeout=60
        )
        # The file went to the storage chat (a message of its own there), then into the inline message.
        [upload] = tg.calls_to("sendVideo", ok=True)
        assert upload["chat_id"] == STORAGE_CHAT and "reply_parameters" not in upload.params
        assert upload.files["video"].stat().st_size == media_site.files.big_mp4.stat().st_size
        file_id = upload.result["video"]["file_id"]
        assert media["media"]["type"] == "video" and media["media"]["media"] == file_id
        message = tg.inline_messages[inline_id]
        assert message["video"]["file_id"] == file_id and "text" not in message
        assert "reply_markup" not in message, "the Downloading… button went with the placeholder"
        # On the way, the inline message showed the download's progress.
        progress = [e for e in message.get("_edits", []) if isinstance(e, str)]
        assert any("%" in text for text in progress), progress
        assert not tg.calls_to("sendMessage"), "nothing was said in any chat"

        # Its file_id is remembered: the next inline query for it is answered with the file at once.
        await wait_until(lambda: delivered(bot.services))
        again = tg.inline_query(url, user=BOB)
        [cached] = (await tg.inline_answer(again))["results"]
        assert cached["type"] == "video" and cached["video_file_id"] == file_id


async def test_inline_off_in_settings_answers_with_an_explanation_only(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_storage_chat=STORAGE_CHAT) as bot:
        menu_ask = tg.send("/settings")
        menu = await tg.wait_for(
            lambda: next((m for m in tg.replies_to(menu_ask) if m.get("reply_markup")), None)
        )
        rows = menu["reply_markup"]["inline_keyboard"]
        assert [(b["text"], b["callback_data"]) for b in rows[-1]] == [("✓ Inline: on", "set:inline:0")]
        tg.press(menu, "set:inline:0")
        await tg.wait_for(
            lambda: "Inline: off" in str(tg.messages[(ALICE.id, menu["message_id"])].get("reply_markup"))
        )
        assert (await bot.services.prefs.get("telegram", str(ALICE.id))).inline is False

        url = clip(media_site)
        answer = await tg.inline_answer(tg.inline_query(url))
        assert answer["results"] == [] and answer["button"]["text"] == texts.INLINE_OFF
        # The button opens the private chat with "/start settings": the settings, to turn it on again.
        assert answer["button"]["start_parameter"] == "settings"
        start = tg.send("/start settings")
        menu2 = await tg.wait_for(
            lambda: next((m for m in tg.replies_to(start) if m.get("reply_markup")), None)
        )
        assert ("✓ Inline: off", "set:inline:1") in buttons(menu2)
        # Bob did not turn it off.
        [result] = (await tg.inline_answer(tg.inline_query(url, user=BOB)))["results"]
        assert result["type"] == "article"

        # A result Alice chose before turning it off is not downloaded either.
        query = tg.inline_query(url, user=BOB)
        result = (await tg.inline_answer(query))["results"][0]
        inline_id = tg.choose_inline(query, result, user=ALICE)
        assert inline_id is not None
        await tg.wait_for(lambda: tg.inline_messages[inline_id].get("text") == texts.INLINE_OFF_TOO)
        assert not tg.calls_to("sendVideo")


async def test_a_file_too_large_for_telegram_says_so_in_the_inline_message(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    settings = dict(telegram_storage_chat=STORAGE_CHAT, telegram_upload_limit_mb=0.1, link_ttl_s=3600)
    async with telegram_bot(tmp_path, tg, **settings) as bot:
        query = tg.inline_query(clip(media_site))
        [result] = (await tg.inline_answer(query))["results"]
        inline_id = tg.choose_inline(query, result)
        assert inline_id is not None
        text = await tg.wait_for(
            lambda: "download link" in (t := str(tg.inline_messages[inline_id].get("text"))) and t, timeout=60
        )
        assert "over Telegram's 100 KB upload limit, and no smaller copy fits" in text
        assert text.rsplit("\n", 1)[-1].startswith(bot.services.settings.public_url + "/")
        assert not tg.calls_to("sendVideo", "sendDocument", "editMessageMedia")

        # A page without media: the core's one sentence, in the inline message.
        query = tg.inline_query(media_site.url("/nomedia.html"))
        [result] = (await tg.inline_answer(query))["results"]
        inline_id = tg.choose_inline(query, result)
        assert inline_id is not None
        await tg.wait_for(
            lambda: tg.inline_messages[inline_id].get("text") == UnsupportedUrl.no_media_message, timeout=30
        )


async def test_a_restarted_bot_still_turns_the_inline_message_into_the_video(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    url = slow(media_site, rate=6_000_000)  # ~5 s: time to stop the bot in the middle
    settings = make_settings(
        tmp_path, telegram_token=tg.token, telegram_api_url=tg.api_url, telegram_storage_chat=STORAGE_CHAT,
        shutdown_grace_s=0,
    )  # fmt: skip
    async with running_services(settings) as services:
        async with running(services):
            query = tg.inline_query(url)
            [result] = (await tg.inline_answer(query))["results"]
            inline_id = tg.choose_inline(query, result)
            assert inline_id is not None
            # Someone presses the placeholder's button: a short answer, nothing else.
            press = tg.press_inline(inline_id, "inl:wait", user=BOB)
            assert (await callback_answer(tg, press)).get("text") == texts.INLINE_WAIT_PRESSED
            await tg.wait_for(lambda: "%" in str(tg.inline_messages[inline_id].get("text")), timeout=30)
        # The bot stops while the worker goes on; the request stays undelivered and is picked up on start.
        assert not tg.calls_to("editMessageMedia")
        async with running(services):
            media = await tg.wait_call(
                "editMessageMedia", lambda c: c.get("inline_message_id") == inline_id, timeout=60
            )
            [upload] = tg.calls_to("sendVideo", ok=True)
            assert upload["chat_id"] == STORAGE_CHAT
            assert media["media"]["media"] == upload.result["video"]["file_id"]
            await wait_until(lambda: delivered(services))


async def test_people_outside_the_allowlist_get_no_inline_answers(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(
        tmp_path, tg, telegram_storage_chat=STORAGE_CHAT, telegram_allowed_users=[str(ALICE.id)]
    ):
        refused = await tg.inline_answer(tg.inline_query(clip(media_site), user=BOB))
        assert refused["results"] == [] and "button" not in refused.params
        [result] = (await tg.inline_answer(tg.inline_query(clip(media_site))))["results"]
        assert result["type"] == "article"


async def test_the_inline_message_cancel_button_is_its_persons(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_storage_chat=STORAGE_CHAT):
        query = tg.inline_query(slow(media_site, rate=1_000_000))  # ~30 s: cancelled long before the end
        [result] = (await tg.inline_answer(query))["results"]
        inline_id = tg.choose_inline(query, result)
        assert inline_id is not None
        cancel = await tg.wait_for(
            lambda: (
                "cancel:" in str(markup := tg.inline_messages[inline_id].get("reply_markup"))
                and markup["inline_keyboard"][0][0]["callback_data"]
            ),
            timeout=30,
        )
        # Someone else in the chat can't cancel it.
        press = tg.press_inline(inline_id, cancel, user=BOB)
        assert "Only the person who asked" in str((await callback_answer(tg, press)).get("text"))
        press = tg.press_inline(inline_id, cancel)
        assert (await callback_answer(tg, press)).get("text") == texts.CANCELLED
        await tg.wait_for(lambda: tg.inline_messages[inline_id].get("text") == texts.CANCELLED)
        assert "reply_markup" not in tg.inline_messages[inline_id]
        await asyncio.sleep(0.5)
        assert not tg.calls_to("sendVideo", "editMessageMedia")


async def test_a_playlist_link_inline_says_to_use_a_private_chat(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_storage_chat=STORAGE_CHAT) as bot:
        query = tg.inline_query(media_site.url(f"/feed.xml?n=2&t={uuid.uuid4().hex[:6]}"))
        [result] = (await tg.inline_answer(query))["results"]
        inline_id = tg.choose_inline(query, result)
        assert inline_id is not None
        await tg.wait_for(
            lambda: tg.inline_messages[inline_id].get("text") == texts.INLINE_PLAYLIST, timeout=30
        )
        await wait_until(lambda: delivered(bot.services), timeout=60)
        assert tg.inline_messages[inline_id]["text"] == texts.INLINE_PLAYLIST
        assert not tg.calls_to("editMessageMedia", "sendMessage", "sendVideo")


async def test_a_copy_that_fits_becomes_the_inline_message_with_its_note(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """/qualities.html offers 360p (~30.7 MB) and 240p (~254 KB): with a 1 MB limit the planner sends the 240p
    copy, with the note and the full-quality link as its caption. Asked again, the stored copy's file_id
    answers: no download, no upload."""
    tg = telegram_server
    url = media_site.url(f"/qualities.html?t={uuid.uuid4().hex[:8]}")
    async with telegram_bot(
        tmp_path, tg, telegram_storage_chat=STORAGE_CHAT, telegram_upload_limit_mb=1
    ) as bot:
        query = tg.inline_query(url)
        [result] = (await tg.inline_answer(query))["results"]
        inline_id = tg.choose_inline(query, result)
        media = await tg.wait_call(
            "editMessageMedia", lambda c: c.get("inline_message_id") == inline_id, timeout=60
        )
        [upload] = tg.calls_to("sendVideo", ok=True)
        assert upload["chat_id"] == STORAGE_CHAT and upload["height"] == 240
        assert media["media"]["media"] == upload.result["video"]["file_id"]
        assert media["media"]["caption"].startswith(
            "Sent at 240p to fit Telegram's 1 MB limit. Full quality: http"
        )
        await wait_until(lambda: delivered(bot.services))

        # The copy's file_id is not the original's: the next query offers a download, which the stored
        # original and its copy answer at once.
        again = tg.inline_query(url, user=BOB)
        [result] = (await tg.inline_answer(again))["results"]
        assert result["type"] == "article"
        big = media_site.downloads("/big.mp4")
        second = tg.choose_inline(again, result, user=BOB)
        media = await tg.wait_call(
            "editMessageMedia", lambda c: c.get("inline_message_id") == second, timeout=60
        )
        assert media["media"]["media"] == upload.result["video"]["file_id"]
        assert len(tg.calls_to("sendVideo")) == 1 and media_site.downloads("/big.mp4") == big
