"""Groups done right, against the fake Bot API server: /groupsettings for admins only (getChatMember), "every
link" stored per group, progress messages gone once the file is there, and a person's format picker that
only they may press and that does not stay in the group's view."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bots.telegram import texts
from tests.bots.test_telegram import clip, media_call, reply_text, telegram_bot
from tests.bots.test_telegram_media import buttons, callback_answer, fresh, keyboard_reply
from tests.fakes.telegram import ALICE, BOB, GROUP_CHAT_ID, FakeTelegram
from tests.support.media_site import MediaSite

pytestmark = pytest.mark.timeout(90)


def menu_reply(tg: FakeTelegram, asked: dict[str, Any]) -> dict[str, Any] | None:
    return next((m for m in tg.replies_to(asked) if m.get("reply_markup")), None)


async def test_admins_turn_on_every_link_and_progress_messages_go_away(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    tg.admins[GROUP_CHAT_ID] = {ALICE.id}
    async with telegram_bot(tmp_path, tg) as bot:
        # Admins see /groupsettings in the command menu; everyone else does not.
        admin_menu = [c["command"] for c in tg.scoped_commands["all_chat_administrators"]]
        assert admin_menu[-1] == "groupsettings" and "groupsettings" not in [
            c["command"] for c in tg.commands
        ]
        ignored = tg.send(f"look at this {clip(media_site)}", user=BOB, group=True)

        # A member who is not an admin: one sentence, nothing changes.
        bob_asks = tg.send("/groupsettings", user=BOB, group=True)
        assert await reply_text(tg, bob_asks) == texts.GROUP_ADMINS_ONLY
        # In a private chat there is no group to set.
        private = tg.send("/groupsettings")
        assert await reply_text(tg, private) == texts.GROUP_ONLY

        alice_asks = tg.send("/groupsettings", group=True)
        menu = await tg.wait_for(lambda: menu_reply(tg, alice_asks))
        assert menu["text"] == texts.group_settings_text(False)
        assert ("✓ Only links sent to me", "grp:every:0") in buttons(menu)
        # Bob presses Alice's menu: refused, nothing saved.
        query = tg.press(menu, "grp:every:1", user=BOB)
        assert (await callback_answer(tg, query)).get("text") == texts.GROUP_ADMINS_ONLY
        assert not (await bot.services.groups.get("telegram", str(GROUP_CHAT_ID))).every_link
        tg.press(menu, "grp:every:1")
        await tg.wait_for(
            lambda: (
                tg.messages[(GROUP_CHAT_ID, menu["message_id"])]["text"] == texts.group_settings_text(True)
            )
        )
        assert (await bot.services.groups.get("telegram", str(GROUP_CHAT_ID))).every_link
        assert [c["user_id"] for c in tg.calls_to("getChatMember")] == [BOB.id, ALICE.id, BOB.id, ALICE.id]
        # An admin posting as the group (anonymously) is an admin too, without asking Telegram.
        anonymous = tg.send("/groupsettings", group=True, anonymous=True)
        assert (await tg.wait_for(lambda: menu_reply(tg, anonymous)))["text"] == texts.group_settings_text(
            True
        )
        assert len(tg.calls_to("getChatMember")) == 4

        # Now any link anyone posts is taken; the video replies to the post, and the progress message that
        # showed the download is gone once it is there.
        posted = tg.send(f"look at this {clip(media_site)}", user=BOB, group=True)
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", posted), timeout=30)
        assert video["chat_id"] == GROUP_CHAT_ID
        progress = [m for m in tg.replies_to(posted) if "video" not in m]
        assert progress and "Queued" in tg.calls_to("sendMessage")[-1]["text"]
        await tg.wait_for(lambda: all(m.get("_deleted") for m in progress))
        # Words without a link still get nothing.
        chatter = tg.send("nice video", user=BOB, group=True)

        # Back to links sent to the bot only.
        tg.press(menu, "grp:every:0")
        await tg.wait_for(
            lambda: (
                tg.messages[(GROUP_CHAT_ID, menu["message_id"])]["text"] == texts.group_settings_text(False)
            )
        )
        later = tg.send(f"and this {clip(media_site)}", user=BOB, group=True)
        await asyncio.sleep(0.5)
        for message in (ignored, chatter, later):
            assert tg.replies_to(message) == [], message["text"]


async def test_a_picker_in_a_group_is_its_persons_and_goes_away(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    bot_name = tg.bot["username"]
    async with telegram_bot(tmp_path, tg, telegram_group_picker_timeout_s=3) as bot:
        await bot.services.prefs.set("telegram", str(ALICE.id), ask_format=True)

        # Nobody chooses: the picker is removed after its time, so it does not stay in the group.
        asked = tg.send(f"@{bot_name} {fresh(media_site, '/formats.html')}", group=True)
        picker = await keyboard_reply(tg, asked)
        data = next(data for text, data in buttons(picker) if text.startswith("240p"))
        query = tg.press(picker, data, user=BOB)  # someone else can't choose for Alice
        assert (await callback_answer(tg, query)).get("text") == texts.CHOICE_NOT_YOURS
        await tg.wait_for(
            lambda: tg.messages[(GROUP_CHAT_ID, picker["message_id"])].get("_deleted"), timeout=10
        )
        assert media_call(tg, "sendVideo", asked) is None

        # Chosen in time: it becomes the progress message (not removed by its timer) and goes away once the
        # video is there.
        again = tg.send(f"@{bot_name} {fresh(media_site, '/formats.html')}", group=True)
        picker2 = await keyboard_reply(tg, again)
        tg.press(picker2, data)
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", again), timeout=40)
        assert video["height"] == 240
        key = (GROUP_CHAT_ID, picker2["message_id"])
        await tg.wait_for(lambda: tg.messages[key].get("_deleted"))
        assert "Queued" in tg.messages[key]["_edits"][0]
        await asyncio.sleep(3.5)  # past the timer's time
        deletes = [
            c for c in tg.calls_to("deleteMessage") if (c["chat_id"], c["message_id"]) == key
        ]  # fmt: skip
        assert len(deletes) == 1 and deletes[0].at > video.at, "deleted once, when the video was there"
