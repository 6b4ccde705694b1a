"""Issue 24 item 1 on Telegram: a person hears the bot in their app's language (language_code), progress and
the file's caption included, unless they pick another with /language; an unknown code gets English with a
note; the command menu is set per language."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.bots.test_telegram import clip, media_call, reply_text, telegram_bot
from tests.fakes.telegram import ALICE, FakeTelegram, User
from tests.support.media_site import MediaSite

pytestmark = pytest.mark.timeout(60)

IVAN = User(2001, "Ivan", "ivan", language_code="ru")


async def test_a_russian_app_gets_russian_from_help_to_the_file(
    tmp_path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg):
        # The command menu: English by default, and one per language we speak, for apps in that language.
        assert [c["command"] for c in tg.commands_by_language["ru"]] == [c["command"] for c in tg.commands]
        descriptions = {c["command"]: c["description"] for c in tg.commands_by_language["ru"]}
        assert descriptions["video"] == "Скачать видео: /video ССЫЛКА"
        assert {"pt", "uk", "fa", "ar"} <= set(tg.commands_by_language)

        assert (await reply_text(tg, tg.send("/help", user=IVAN))).startswith(
            "Я скачиваю видео и песни по ссылкам"
        )
        asked = tg.send(clip(media_site), user=IVAN)
        await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=30)
        [progress] = [
            c for c in tg.calls_to("sendMessage", ok=True)
            if (c.get("reply_parameters") or {}).get("message_id") == asked["message_id"]
        ]  # fmt: skip
        assert progress["text"].split("\n")[1] in ("В очереди", "Начинаю", "Загрузка")
        assert "Отмена" in str(progress["reply_markup"]) and "Cancel" not in str(progress["reply_markup"])
        # Its edits, made by the delivery after the handler returned, in Russian too.
        words = " ".join(str(c.get("text")) for c in tg.calls_to("editMessageText", ok=True))
        assert "Downloading" not in words and "Queued" not in words and "Uploading" not in words

        # Someone else in English at the same time stays English.
        assert "I download videos" in await reply_text(tg, tg.send("/help", user=ALICE))


async def test_language_command_switches_and_an_unknown_code_gets_english_with_a_note(
    tmp_path, telegram_server: FakeTelegram
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg) as bot:
        # /language with buttons: Deutsch pressed, from then on German although the app says Russian.
        menu_ask = tg.send("/language", user=IVAN)
        menu = await tg.wait_for(
            lambda: next((m for m in tg.replies_to(menu_ask) if m.get("reply_markup")), None)
        )
        assert menu["text"] == "На каком языке мне с вами говорить?"
        labels = [b["text"] for row in menu["reply_markup"]["inline_keyboard"] for b in row]
        assert "Deutsch" in labels and "فارسی" in labels
        tg.press(menu, "lang:de", user=IVAN)
        await tg.wait_for(lambda: "Sprache" in tg.messages[(IVAN.id, menu["message_id"])]["text"])
        assert (await bot.services.prefs.get("telegram", str(IVAN.id))).language == "de"
        assert (await reply_text(tg, tg.send("/status", user=IVAN))) == "Du hast keine laufenden Downloads."

        # /language fa by code: Persian.
        assert (await reply_text(tg, tg.send("/language fa", user=IVAN))) == "از این پس فارسی حرف می‌زنم."
        assert (await reply_text(tg, tg.send("/status", user=IVAN))) == "دانلودی در جریان ندارید."

        # An unknown code: one English sentence that says so, with the choice; nothing saved.
        note = await reply_text(tg, tg.send("/language xx", user=IVAN))
        assert note.startswith("I don't speak xx yet, so I'll stay with English.")
        assert (await bot.services.prefs.get("telegram", str(IVAN.id))).language == "fa"

        # Back to the app's language.
        again = tg.send("/language", user=IVAN)
        menu = await tg.wait_for(
            lambda: next((m for m in tg.replies_to(again) if m.get("reply_markup")), None)
        )
        tg.press(menu, "lang:auto", user=IVAN)
        await tg.wait_for(lambda: "Telegram" in str(tg.calls_to("answerCallbackQuery")[-1].params))
        assert (await reply_text(tg, tg.send("/status", user=IVAN))) == "У вас нет текущих загрузок."


async def test_an_app_language_we_lack_is_english_and_a_regional_one_is_its_language(
    tmp_path, telegram_server: FakeTelegram
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg):
        japanese = replace(IVAN, id=2002, language_code="ja")
        assert (await reply_text(tg, tg.send("/status", user=japanese))) == "You have no downloads running."
        brazilian = replace(IVAN, id=2003, language_code="pt-br")
        assert (
            await reply_text(tg, tg.send("/status", user=brazilian))
        ) == "Você não tem downloads em andamento."


def test_settings_offer_the_language_picker_in_the_persons_language() -> None:
    from bots.telegram import texts
    from core.i18n import use

    with use("ru"):
        keyboard = texts.settings_keyboard("video", "best").to_dict()["inline_keyboard"]
        languages = texts.language_keyboard("de").to_dict()["inline_keyboard"]
    assert [{"text": "🌐 Язык", "callback_data": "lang:menu"}] in keyboard
    buttons = {b["callback_data"]: b["text"] for row in languages for b in row}
    assert buttons["lang:de"] == "✓ Deutsch" and buttons["lang:fa"] == "فارسی"
    assert buttons["lang:auto"] == "Как в моём Telegram"


async def test_a_russian_clip_that_ends_before_it_starts_is_refused_in_russian(
    tmp_path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg):
        answer = await reply_text(tg, tg.send(f"{media_site.url('/counter.mp4')} 1:45-1:20", user=IVAN))
    assert answer == "Клип должен заканчиваться после начала: 1:20 не позже 1:45."
