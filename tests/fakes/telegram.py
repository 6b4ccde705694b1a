"""A fake Telegram Bot API server (aiohttp on 127.0.0.1) that the real python-telegram-bot client talks to.

It speaks the Bot API's HTTP shape (``POST /bot<TOKEN>/<method>``, form-encoded or multipart parameters,
``{"ok": true, "result": ...}`` answers), keeps the chats' messages so edits and deletes behave like the real
server (400 "message is not modified" for an identical edit), stores uploaded files on disk, and records every
call. Tests play the users: :meth:`FakeTelegram.send` puts a message into ``getUpdates``, :meth:`press` a
button, :meth:`inline_query` types "@bot LINK" and :meth:`choose_inline` picks one of the answers (the server
then holds an inline message the bot can edit by its ``inline_message_id``), and :meth:`flood` / :meth:`fail`
make the next calls of a method fail. ``admins`` says who administers a group (``getChatMember``).

Fixture: ``telegram_server`` (function scope), enabled by ``tests.fakes.telegram`` in ``pytest_plugins``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

# Parameters whose values are text as sent (everything else is JSON-decoded when it parses).
_TEXT_PARAMS = {
    "text", "caption", "title", "performer", "callback_query_id", "description", "short_description",
    "file_id", "url", "secret_token", "action", "query", "filename", "video", "audio", "document", "animation",
    "inline_query_id", "inline_message_id",
}  # fmt: skip
_MEDIA = {
    "sendVideo": "video",
    "sendAudio": "audio",
    "sendDocument": "document",
    "sendAnimation": "animation",
}


@dataclass
class Call:
    """One request the bot made."""

    method: str
    params: dict[str, Any]
    # multipart field -> stored upload; a parameter sent as "attach://NAME" (a thumbnail) is filed under the
    # parameter's own name too, so a test finds it as files["thumbnail"]
    files: dict[str, Path] = field(default_factory=dict)
    status: int = 200
    at: float = field(default_factory=time.monotonic)
    result: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)


@dataclass
class User:
    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = None  # the person's app language, as Telegram reports it ("ru", "pt-br")

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            body["username"] = self.username
        if self.language_code:
            body["language_code"] = self.language_code
        return body


ALICE = User(1001, "Alice", "alice")
BOB = User(1002, "Bob", "bob")
CAROL = User(1003, "Carol", None)
GROUP_CHAT_ID = -100500
# Who a group admin posting anonymously appears as (Telegram's own bot account).
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
CHANNEL_CHAT_ID = -100700


class FakeTelegram:
    def __init__(
        self, root: Path, *, token: str | None = None, bot_username: str = "mediabot_test_bot"
    ) -> None:
        self.token = token or f"{secrets.randbelow(9 * 10**9) + 10**9}:{secrets.token_urlsafe(26)}"
        self.root = root
        self.uploads_dir = root / "uploads"
        self.bot = {
            "id": 777000111, "is_bot": True, "first_name": "Mediabot", "username": bot_username,
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": True,
        }  # fmt: skip
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        # (chat_id, message_id) -> message dict as the server holds it (text, reply_markup, deleted flag)
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.files: dict[str, Path] = {}  # file_id -> uploaded file
        # inline_message_id -> the inline message as the server holds it (text or media, reply_markup, _edits)
        self.inline_messages: dict[str, dict[str, Any]] = {}
        self.inline_queries: dict[str, dict[str, Any]] = {}  # id -> the inline query as sent to the bot
        self.inline_answers: dict[str, Call] = {}  # inline query id -> the bot's answerInlineQuery
        self.admins: dict[int, set[int]] = {}  # group chat id -> user ids of its administrators
        self.commands: list[dict[str, Any]] = []
        self.commands_by_language: dict[str, list[dict[str, Any]]] = {}  # language_code -> default menu
        # (chat id, language_code) -> that chat's menu for apps in that language (the operators' menus)
        self.chat_commands_by_language: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self.scoped_commands: dict[str, list[dict[str, Any]]] = {}  # scope type -> its command menu
        self.chat_commands: dict[int, list[dict[str, Any]]] = {}  # BotCommandScopeChat: chat id -> its menu
        self.upload_limit: int | None = None  # bytes; larger request bodies get an nginx-style 413
        self.webhook: dict[str, Any] | None = None  # set by setWebhook: updates are POSTed there, not polled
        self.webhook_posts: list[int] = []  # HTTP status of each webhook delivery
        self._failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._new_update = asyncio.Condition()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self.port = 0

    # -- lifecycle ----------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """What MEDIABOT_TELEGRAM_API_URL points at."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        app = web.Application(client_max_size=4 * 1024**3)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self._closing = True
        async with self._new_update:
            self._new_update.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests do ------------------------------------------------------------------------------------

    def send(
        self,
        text: str,
        *,
        user: User = ALICE,
        chat_id: int | None = None,
        group: bool = False,
        reply_to: dict[str, Any] | int | None = None,
        anonymous: bool = False,
    ) -> dict[str, Any]:
        """A user sends a text message to the bot (private chat, or the test group). Returns the message.
        `anonymous`: a group admin posting as the group (sender_chat is the group; from is Telegram's
        GroupAnonymousBot)."""
        if group and chat_id is None:
            chat_id = GROUP_CHAT_ID
        chat_id = chat_id if chat_id is not None else user.id
        chat: dict[str, Any] = (
            {"id": chat_id, "type": "group", "title": "Test group"}
            if chat_id < 0
            else {"id": chat_id, "type": "private", "first_name": user.first_name}
        )
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "from": user.to_dict(),
            "text": text,
        }
        if anonymous:
            message["from"] = ANONYMOUS_ADMIN
            message["sender_chat"] = chat
        entities = _entities(text)
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            if isinstance(reply_to, int):
                reply_to = self.messages[(chat_id, reply_to)]
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if not k.startswith("_")}
        self.messages[(chat_id, message["message_id"])] = message
        message["_update_id"] = self._push({"message": message})
        return message

    def post_in_channel(self, text: str, *, chat_id: int = CHANNEL_CHAT_ID) -> dict[str, Any]:
        """An admin posts in a channel the bot is an admin of (a `channel_post`: no person, the channel as
        sender). Returns the post."""
        chat = {"id": chat_id, "type": "channel", "title": "Test channel"}
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
            "date": int(time.time()),
            "chat": chat,
            "sender_chat": chat,
            "text": text,
        }
        entities = _entities(text)
        if entities:
            message["entities"] = entities
        self.messages[(chat_id, message["message_id"])] = message
        message["_update_id"] = self._push({"channel_post": message})
        return message

    def press(self, message: dict[str, Any] | tuple[int, int], data: str, *, user: User = ALICE) -> str:
        """A user presses an inline button (by its callback data) under one of the bot's messages."""
        if isinstance(message, tuple):
            message = self.messages[message]
        query_id = uuid.uuid4().hex[:16]
        visible = {k: v for k, v in message.items() if not k.startswith("_")}
        self._push(
            {
                "callback_query": {
                    "id": query_id, "from": user.to_dict(), "chat_instance": "ci-1", "data": data,
                    "message": visible,
                }
            }
        )  # fmt: skip
        return query_id

    def press_inline(self, inline_message_id: str, data: str, *, user: User = ALICE) -> str:
        """A user presses a button under an inline message (the query names the message by its id only)."""
        query_id = uuid.uuid4().hex[:16]
        self._push(
            {
                "callback_query": {
                    "id": query_id, "from": user.to_dict(), "chat_instance": "ci-2", "data": data,
                    "inline_message_id": inline_message_id,
                }
            }
        )  # fmt: skip
        return query_id

    def inline_query(self, query: str, *, user: User = ALICE, chat_type: str = "private") -> str:
        """A user types "@bot QUERY" in some chat (`chat_type`: the kind of chat they type in). Returns the
        query's id (its answer is then in `inline_answers`)."""
        query_id = f"q{uuid.uuid4().hex[:15]}"
        asked = {"id": query_id, "from": user.to_dict(), "query": query, "offset": "", "chat_type": chat_type}
        self.inline_queries[query_id] = asked
        self._push({"inline_query": dict(asked)})
        return query_id

    async def inline_answer(self, query_id: str, timeout: float = 20) -> Call:
        return await self.wait_for(lambda: self.inline_answers.get(query_id), timeout)

    def choose_inline(self, query_id: str, result: dict[str, Any], *, user: User = ALICE) -> str | None:
        """The user taps `result` (one of the bot's answers to `query_id`): Telegram posts it as an inline
        message and, with inline feedback on, tells the bot which one it was. The inline_message_id is given
        only when the result carries an inline keyboard (as on the real server). Returns it."""
        answer = self.inline_answers[query_id]
        inline_id = f"im{uuid.uuid4().hex[:20]}" if result.get("reply_markup") else None
        content: dict[str, Any] = {}
        if result["type"] == "article":
            content["text"] = result["input_message_content"]["message_text"]
        else:
            kind = result["type"]  # video | audio | document
            content[kind] = {"file_id": result[f"{kind}_file_id"]}
        if inline_id is not None:
            self.inline_messages[inline_id] = {
                **content,
                "reply_markup": result["reply_markup"],
                "_from": user.id,
            }
        chosen: dict[str, Any] = {
            "result_id": result["id"], "from": user.to_dict(), "query": answer.get("_query", ""),
        }  # fmt: skip
        if inline_id is not None:
            chosen["inline_message_id"] = inline_id
        self._push({"chosen_inline_result": chosen})
        return inline_id

    def flood(self, method: str, count: int = 1, retry_after: int = 1) -> None:
        """The next `count` calls of `method` answer 429 with parameters.retry_after."""
        body = {
            "ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }  # fmt: skip
        self._failures.setdefault(method, []).extend([(429, body)] * count)

    def fail(
        self, method: str, status: int = 500, description: str = "Internal Server Error", count: int = 1
    ) -> None:
        """The next `count` calls of `method` fail with this status."""
        body = {"ok": False, "error_code": status, "description": description}
        self._failures.setdefault(method, []).extend([(status, body)] * count)

    def calls_to(self, *methods: str, ok: bool | None = None) -> list[Call]:
        return [c for c in self.calls if c.method in methods and (ok is None or c.ok == ok)]

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat, oldest first, deleted ones included (flag `_deleted`)."""
        return [m for (cid, _), m in sorted(self.messages.items()) if cid == chat_id and m.get("_from_bot")]

    def replies_to(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        chat_id = message["chat"]["id"]
        return [
            m for m in self.bot_messages(chat_id)
            if m.get("reply_to_message", {}).get("message_id") == message["message_id"]
        ]  # fmt: skip

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20) -> Any:
        """Wait until `predicate()` is truthy (re-checked whenever the bot makes a call)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                value = predicate()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"condition not met within {timeout}s; last calls: {self._summary()}")
                try:
                    await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
                except TimeoutError:
                    pass

    async def wait_call(
        self, method: str, predicate: Callable[[Call], bool] = lambda c: True, **kw: Any
    ) -> Call:
        """The first successful call of `method` matching `predicate`."""
        return await self.wait_for(
            lambda: next((c for c in self.calls_to(method, ok=True) if predicate(c)), None), **kw
        )

    def _summary(self) -> str:
        return ", ".join(f"{c.method}:{c.status}" for c in self.calls[-15:] if c.method != "getUpdates")

    # -- the server ---------------------------------------------------------------------------------------

    def _next_message_id(self, chat_id: int) -> int:
        counter = self._message_ids.setdefault(chat_id, itertools.count(1))
        return next(counter)

    def _push(self, update: dict[str, Any]) -> int:
        update["update_id"] = next(self._update_ids)
        if self.webhook is not None:
            asyncio.get_running_loop().create_task(
                self._post_webhook(_public_update(update), dict(self.webhook))
            )
            return int(update["update_id"])
        self.updates.append(update)

        async def notify() -> None:
            async with self._new_update:
                self._new_update.notify_all()

        asyncio.get_running_loop().create_task(notify())
        return int(update["update_id"])

    async def _post_webhook(
        self, update: dict[str, Any], hook: dict[str, Any], secret: str | None = None
    ) -> int:
        """Deliver one update the way Telegram does in webhook mode (a POST with the secret header)."""
        import aiohttp

        headers = {
            "X-Telegram-Bot-Api-Secret-Token": secret if secret is not None else hook.get("secret_token", "")
        }
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.post(hook["url"], json=update, headers=headers) as resp,
        ):
            status = resp.status
        self.webhook_posts.append(status)
        self._record(Call("(webhook)", {"update_id": update.get("update_id")}, status=status))
        return status

    async def post_to_webhook(self, update: dict[str, Any], secret: str) -> int:
        """A POST to the bot's webhook with a chosen secret (to see a forged one refused)."""
        assert self.webhook is not None
        return await self._post_webhook(update, self.webhook, secret)

    async def _file(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        if self.upload_limit is not None and (request.content_length or 0) > self.upload_limit:
            # What nginx in front of the real server does: an HTML page, before reading the body.
            call = Call(method, {}, status=413)
            self._record(call)
            return web.Response(
                status=413, content_type="text/html",
                text="<html><head><title>413 Request Entity Too Large</title></head>"
                "<body><center><h1>413 Request Entity Too Large</h1></center><hr><center>nginx</center></body></html>",
            )  # fmt: skip
        params, files = await self._read_params(request)
        call = Call(method, params, files)
        failures = self._failures.get(method)
        if failures:
            status, body = failures.pop(0)
            call.status = status
            self._record(call)
            return web.json_response(body, status=status)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            call.status = 404
            self._record(call)
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        try:
            result = await handler(call)
        except _ApiError as exc:
            call.status = exc.status
            self._record(call)
            return web.json_response(
                {"ok": False, "error_code": exc.status, "description": exc.description}, status=exc.status
            )
        call.result = result
        self._record(call)
        return web.json_response({"ok": True, "result": result})

    def _record(self, call: Call) -> None:
        self.calls.append(call)

        async def notify() -> None:
            async with self._changed:
                self._changed.notify_all()

        asyncio.get_running_loop().create_task(notify())

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Path]]:
        raw: dict[str, str] = {}
        files: dict[str, Path] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part is None or not hasattr(part, "read_chunk"):
                    continue
                name = part.name or ""
                if part.filename:
                    dest = self.uploads_dir / f"{uuid.uuid4().hex[:10]}-{Path(part.filename).name}"
                    with dest.open("wb") as out:
                        while chunk := await part.read_chunk(1 << 20):
                            out.write(chunk)
                    files[name] = dest
                else:
                    raw[name] = await part.text()
        elif request.content_type == "application/json":
            body = await request.json() if request.can_read_body else {}
            return dict(body or {}), files
        else:
            raw.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
            raw.update({k: v for k, v in request.query.items()})
        params = {k: _decode(k, v) for k, v in raw.items()}
        for key, value in params.items():
            if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
                files[key] = files[value[9:]]
        return params, files

    # -- methods ------------------------------------------------------------------------------------------

    async def _m_getMe(self, call: Call) -> Any:
        return self.bot

    async def _m_deleteWebhook(self, call: Call) -> Any:
        self.webhook = None
        return True

    async def _m_setWebhook(self, call: Call) -> Any:
        self.webhook = (
            {"url": call["url"], "secret_token": call.get("secret_token") or ""} if call.get("url") else None
        )
        return True

    async def _m_setMyCommands(self, call: Call) -> Any:
        # One menu per scope and language_code, as Telegram keeps them. `commands`: the default scope with no
        # language; `scoped_commands`: each scope type with no language; `chat_commands`: BotCommandScopeChat
        # menus by chat id; `commands_by_language`: the default scope.
        scope = call.get("scope") or {}
        kind = scope.get("type", "default")
        language = call.get("language_code") or ""
        commands = list(call.get("commands") or [])
        if language:
            if kind == "default":
                self.commands_by_language[language] = commands
            elif kind == "chat":
                self.chat_commands_by_language[(int(scope["chat_id"]), language)] = commands
            return True
        if kind == "chat":
            self.chat_commands[int(scope["chat_id"])] = commands
            return True
        self.scoped_commands[kind] = commands
        if kind == "default":
            self.commands = commands
        return True

    async def _m_getMyCommands(self, call: Call) -> Any:
        return self.commands_by_language.get(call.get("language_code") or "", self.commands)

    async def _m_sendChatAction(self, call: Call) -> Any:
        return True

    async def _m_answerCallbackQuery(self, call: Call) -> Any:
        return True

    async def _m_answerInlineQuery(self, call: Call) -> Any:
        query_id = str(call["inline_query_id"])
        asked = self.inline_queries.get(query_id)
        if asked is None:
            raise _ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        if query_id in self.inline_answers:
            raise _ApiError(
                400, "Bad Request: query is too old and response timeout expired or query ID is invalid"
            )
        results = call.get("results") or []
        if len(results) > 50 or len({r["id"] for r in results}) != len(results):
            raise _ApiError(400, "Bad Request: RESULT_ID_DUPLICATE")
        for result in results:
            if len(str(result["id"]).encode()) > 64:
                raise _ApiError(400, "Bad Request: RESULT_ID_INVALID")
            kind = result["type"]
            if kind in ("video", "audio", "document") and result.get(f"{kind}_file_id") not in self.files:
                raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        call.params["_query"] = asked["query"]
        self.inline_answers[query_id] = call
        return True

    async def _m_getChatMember(self, call: Call) -> Any:
        chat_id, user_id = int(call["chat_id"]), int(call["user_id"])
        user = next((u for u in (ALICE, BOB, CAROL) if u.id == user_id), User(user_id, "Someone"))
        status = "administrator" if user_id in self.admins.get(chat_id, set()) else "member"
        member: dict[str, Any] = {"status": status, "user": user.to_dict()}
        if status == "administrator":
            member.update(
                can_be_edited=False, is_anonymous=False, can_manage_chat=True, can_delete_messages=True,
                can_manage_video_chats=True, can_restrict_members=True, can_promote_members=False,
                can_change_info=True, can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False,
            )  # fmt: skip
        return member

    async def _m_editMessageMedia(self, call: Call) -> Any:
        media = call.get("media") or {}
        kind = media.get("type")
        if kind not in ("video", "audio", "document", "animation", "photo"):
            raise _ApiError(400, "Bad Request: wrong media type")
        file_id = str(media.get("media") or "")
        if file_id.startswith("attach://"):
            if call.get("inline_message_id"):
                raise _ApiError(400, "Bad Request: can't upload file to an inline message")
            raise _ApiError(400, "Bad Request: uploads in edits are not faked")
        if file_id not in self.files:
            raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        message = self._edited(call)
        for key in ("text", "video", "audio", "document", "animation", "photo"):
            message.pop(key, None)
        message[kind] = {"file_id": file_id, "file_unique_id": file_id[-12:]}
        if media.get("caption"):
            message["caption"] = media["caption"]
        self._set_markup(message, call.get("reply_markup"))
        message.setdefault("_edits", []).append({"media": kind})
        return True if call.get("inline_message_id") else _public(message)

    async def _m_getUpdates(self, call: Call) -> Any:
        offset = int(call.get("offset") or 0)
        timeout = float(call.get("timeout") or 0)
        limit = int(call.get("limit") or 100)
        if offset:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout
        async with self._new_update:
            while True:
                pending = [u for u in self.updates if u["update_id"] >= offset]
                remaining = deadline - time.monotonic()
                if pending or remaining <= 0 or self._closing:
                    return [_public_update(u) for u in pending[:limit]]
                try:
                    await asyncio.wait_for(self._new_update.wait(), remaining)
                except TimeoutError:
                    pass

    async def _m_sendMessage(self, call: Call) -> Any:
        if not str(call.get("text") or "").strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        return self._new_bot_message(call, {"text": call["text"]})

    async def _m_editMessageText(self, call: Call) -> Any:
        message = self._edited(call)
        markup = call.get("reply_markup")
        if message.get("text") == call.get("text") and message.get("reply_markup") == markup:
            raise _ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply markup are exactly "
                "the same as a current content and reply markup of the message",
            )
        message["text"] = call["text"]
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        message.setdefault("_edits", []).append(call["text"])
        return True if call.get("inline_message_id") else _public(message)

    async def _m_editMessageReplyMarkup(self, call: Call) -> Any:
        message = self._edited(call)
        markup = call.get("reply_markup")
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return True if call.get("inline_message_id") else _public(message)

    async def _m_deleteMessage(self, call: Call) -> Any:
        message = self._existing(call, "Bad Request: message to delete not found")
        message["_deleted"] = True
        return True

    async def _m_sendVideo(self, call: Call) -> Any:
        return self._send_media(call)

    async def _m_sendAudio(self, call: Call) -> Any:
        return self._send_media(call)

    async def _m_sendDocument(self, call: Call) -> Any:
        return self._send_media(call)

    async def _m_sendAnimation(self, call: Call) -> Any:
        return self._send_media(call)

    def _send_media(self, call: Call) -> Any:
        kind = _MEDIA[call.method]
        if kind in call.files:
            path = call.files[kind]
            file_id = f"{kind}-{uuid.uuid4().hex}"
            self.files[file_id] = path
        else:
            file_id = str(call.get(kind) or "")
            if file_id not in self.files:
                raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            path = self.files[file_id]
        media: dict[str, Any] = {
            "file_id": file_id, "file_unique_id": file_id[-12:], "file_size": path.stat().st_size,
            "file_name": path.name.split("-", 1)[-1],
        }  # fmt: skip
        if kind in ("video", "animation"):
            media.update(
                width=int(call.get("width") or 0), height=int(call.get("height") or 0),
                duration=int(call.get("duration") or 0), mime_type="video/mp4",
            )  # fmt: skip
        elif kind == "audio":
            media.update(
                duration=int(call.get("duration") or 0),
                title=call.get("title"),
                performer=call.get("performer"),
            )
            media = {k: v for k, v in media.items() if v is not None}
        thumb = call.files.get("thumbnail")
        size = _thumbnail_size(thumb) if thumb is not None else None
        if thumb is not None and size is not None:
            # What Telegram answers for a custom thumbnail it took: a PhotoSize. One it can't use (not a
            # JPEG, over 320 px or 200 kB) it drops without an error, so the answer simply lacks it.
            width, height = size
            thumb_id = f"thumb-{uuid.uuid4().hex}"
            self.files[thumb_id] = thumb
            media["thumbnail"] = {
                "file_id": thumb_id, "file_unique_id": thumb_id[-12:], "width": width, "height": height,
                "file_size": thumb.stat().st_size,
            }  # fmt: skip
        content: dict[str, Any] = {kind: media}
        if kind == "animation":
            content["document"] = media  # as Telegram answers: an animation is also a document
        if call.get("caption"):
            content["caption"] = call["caption"]
        return self._new_bot_message(call, content)

    # -- helpers ------------------------------------------------------------------------------------------

    def _edited(self, call: Call) -> dict[str, Any]:
        """The message an edit names: an inline message by its id, or one of the bot's in a chat."""
        inline_id = call.get("inline_message_id")
        if inline_id:
            message = self.inline_messages.get(str(inline_id))
            if message is None:
                raise _ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
            return message
        return self._existing(call, "Bad Request: message to edit not found")

    @staticmethod
    def _set_markup(message: dict[str, Any], markup: Any) -> None:
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)

    def _existing(self, call: Call, missing: str) -> dict[str, Any]:
        key = (int(call["chat_id"]), int(call["message_id"]))
        message = self.messages.get(key)
        if message is None or message.get("_deleted") or not message.get("_from_bot"):
            raise _ApiError(400, missing)
        return message

    def _new_bot_message(self, call: Call, content: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(call["chat_id"])
        chat = (
            {"id": chat_id, "type": "group", "title": "Test group"}
            if chat_id < 0
            else {"id": chat_id, "type": "private", "first_name": "User"}
        )
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id), "date": int(time.time()), "chat": chat,
            "from": {k: self.bot[k] for k in ("id", "is_bot", "first_name", "username")}, **content,
            "_from_bot": True,
        }  # fmt: skip
        reply = call.get("reply_parameters") or {}
        reply_id = reply.get("message_id") if isinstance(reply, dict) else None
        reply_id = reply_id or call.get("reply_to_message_id")
        if reply_id:
            original = self.messages.get((chat_id, int(reply_id)))
            if original is None and not (
                isinstance(reply, dict) and reply.get("allow_sending_without_reply")
            ):
                raise _ApiError(400, "Bad Request: message to be replied not found")
            if original is not None:
                message["reply_to_message"] = _public(original)
        if call.get("reply_markup"):
            message["reply_markup"] = call["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        return _public(message)


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _public(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if not k.startswith("_")}


def _public_update(update: dict[str, Any]) -> dict[str, Any]:
    return {k: _public(v) if isinstance(v, dict) else v for k, v in update.items()}


def _decode(key: str, value: str) -> Any:
    if key in _TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _thumbnail_size(path: Path) -> tuple[int, int] | None:
    try:
        width, height = jpeg_size(path)
    except ValueError:
        return None
    if max(width, height) > 320 or path.stat().st_size > 200_000:
        return None
    return width, height


def jpeg_size(path: Path) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker; ValueError when the file is not a JPEG."""
    data = path.read_bytes()
    if data[:2] != b"\xff\xd8":
        raise ValueError(f"{path.name} is not a JPEG")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"{path.name}: broken JPEG marker at {i}")
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width follow the length.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    raise ValueError(f"{path.name}: no frame header in the JPEG")


def _entities(text: str) -> list[dict[str, Any]]:
    """What the real server adds to a message: a bot_command at the start, urls, @mentions (ASCII offsets)."""
    import re

    found: list[dict[str, Any]] = []
    command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
    if command:
        found.append({"type": "bot_command", "offset": 0, "length": command.end()})
    for match in re.finditer(r"https?://\S+", text):
        found.append({"type": "url", "offset": match.start(), "length": match.end() - match.start()})
    for match in re.finditer(r"(?<![\w/])@[A-Za-z0-9_]{5,}", text):
        found.append({"type": "mention", "offset": match.start(), "length": match.end() - match.start()})
    return sorted(found, key=lambda e: e["offset"])


@pytest.fixture
async def telegram_server(tmp_path: Path) -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(tmp_path / "telegram")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
