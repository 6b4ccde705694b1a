"""Issue 24 item 1 x item 4: the operator's commands and the ban speak each person's language, as the rest of the
bot does. A Russian operator's /stats, /limits and menus are Russian; a banned German reads the refusal in
German (the admin API's error.message: tests/web/test_admin_api_languages.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.admin.test_telegram_admin import bot, said
from tests.fakes.telegram import ALICE, FakeTelegram, User

pytestmark = pytest.mark.timeout(90)

OLGA = replace(ALICE, language_code="ru")  # the operator (MEDIABOT_TELEGRAM_ADMINS), her app in Russian
HANS = User(2101, "Hans", "hans", language_code="de")


async def test_a_russian_operator_reads_russian_and_a_banned_german_reads_german(
    tmp_path: Path, telegram_server: FakeTelegram
) -> None:
    tg = telegram_server
    async with bot(tmp_path, tg) as services:
        # The operator's menu in each language: Russian apps get it in Russian, operator commands included.
        await tg.wait_for(lambda: (ALICE.id, "ru") in tg.chat_commands_by_language)
        menu = {c["command"]: c["description"] for c in tg.chat_commands_by_language[(ALICE.id, "ru")]}
        assert menu["stats"] == "Оператор: запросы, загрузки и ошибки"
        assert "video" in menu
        english = {c["command"]: c["description"] for c in tg.chat_commands[ALICE.id]}
        assert english["stats"] == "Operator: requests, downloads and failures"

        stats = await said(tg, tg.send("/stats", user=OLGA))
        today, week = stats.split("\n\n")
        assert today.startswith("Сегодня (UTC):\nЗапросы: 0\nЗагрузки: 0\nИз кэша: 0\n")
        assert "Ошибки: нет" in today and week.startswith("Последние 7 дней:")
        assert "Requests" not in stats

        # Hans has chosen a setting, so the bot knows him; Russian plural forms for the operator.
        await services.prefs.set("telegram", str(HANS.id), kind="audio")
        for n, form in ((1, "загрузку"), (3, "загрузки"), (5, "загрузок"), (21, "загрузку")):
            answer = await said(tg, tg.send(f"/limits {HANS.id} {n}", user=OLGA))
            assert answer == f"{HANS.id} теперь может начинать {n} {form} в час."
        assert (await said(tg, tg.send("/ban", user=OLGA))).startswith("Напишите /ban ID [причина]")
        # A core error said by the admin command: translated where it is said.
        assert await said(tg, tg.send(f"/ban {ALICE.id}", user=OLGA)) == "Нельзя заблокировать самого себя."

        assert await said(tg, tg.send(f"/ban {HANS.id} Spam", user=OLGA)) == f"{HANS.id} заблокирован: Spam."
        refused = await said(tg, tg.send("/help", user=HANS))
        assert refused == "Du kannst diesen Bot nicht benutzen. Grund: Spam"
        # The same ban, for someone whose app speaks no language we ship: English.
        assert (
            await said(tg, tg.send(f"/unban {HANS.id}", user=OLGA))
            == f"{HANS.id} снова может пользоваться ботом."
        )
        await said(tg, tg.send(f"/ban {HANS.id}", user=OLGA))
        japanese = replace(HANS, language_code="ja")
        assert await said(tg, tg.send("/help", user=japanese)) == "You can't use this bot."
