"""Messages into Discord for one request: edits of the command's reply through the interaction's webhook
(Discord honours its token for 15 minutes), follow-ups, and once the token is gone (or the reply deleted)
messages in the channel that mention the person, or DMs when the channel refuses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import discord

from bots.discord.target import Target
from bots.discord.texts import MAX_CONTENT

log = logging.getLogger(__name__)

# Error codes: 40005 request entity too large; 50027 invalid webhook token; 10015 unknown webhook;
# 10008 unknown message (the reply was deleted).
TOO_LARGE = 40005
TOKEN_GONE = {50027, 10015, 10008}
TRANSIENT = (discord.DiscordServerError, aiohttp.ClientError, OSError, TimeoutError)

# Files to attach to a message: (path on this machine, the name Discord shows).
Files = Sequence[tuple[Path, str]]


class TokenGone(Exception):
    """The interaction token no longer edits the reply (expired, or the reply was deleted)."""


class AttachmentRefused(Exception):
    """Discord refused the attachment as too large (the limit moves: boosts, plan changes)."""


def too_large(exc: discord.HTTPException) -> bool:
    return exc.status == 413 or exc.code == TOO_LARGE


def token_gone(exc: discord.HTTPException) -> bool:
    return exc.status == 401 or exc.code in TOKEN_GONE


def _opener(files: Files) -> Callable[[], list[discord.File]]:
    """Fresh discord.File objects for each attempt: one is read once, so a retry needs new ones."""
    return lambda: [discord.File(path, filename=name) for path, name in files]


class Posting:
    def __init__(self, client: discord.Client, target: Target, request_id: str) -> None:
        self.client = client
        self.target = target
        self.request_id = request_id
        self.token_gone = False

    def can_edit(self) -> bool:
        return not self.token_gone and self.target.alive()

    async def edit(self, **fields: Any) -> None:
        """Edit the command's reply through the interaction webhook."""
        target = self.target
        webhook = discord.Webhook.partial(int(target.app_id), target.token, client=self.client)
        try:
            ref = "@original" if target.edit_original else (target.message_id or "@original")
            await webhook.edit_message(ref, **fields)  # type: ignore[call-overload]
        except discord.HTTPException as exc:
            if token_gone(exc):
                self.token_gone = True
                raise TokenGone() from exc
            raise

    async def post(self, content: str, files: Files = (), embed: discord.Embed | None = None) -> None:
        """The final message: an edit of the reply while the token lives, else a channel (or DM) message."""
        make = _opener(files)
        embeds = [embed] if embed is not None else []
        if self.can_edit():
            try:
                await self.edit(content=content[:MAX_CONTENT], attachments=make(), embeds=embeds, view=None)
                return
            except TokenGone:
                log.info(
                    "the reply to request %s can no longer be edited; posting a message", self.request_id
                )
            except discord.HTTPException as exc:
                if too_large(exc):
                    raise AttachmentRefused() from exc
                raise
        await self.message(content, make, embeds)

    async def followup(self, content: str, files: Files = (), embed: discord.Embed | None = None) -> None:
        """A message of its own (a playlist item): an interaction follow-up while the token lives, else a
        channel (or DM) message."""
        make = _opener(files)
        embeds = [embed] if embed is not None else []
        if self.can_edit():
            target = self.target
            webhook = discord.Webhook.partial(int(target.app_id), target.token, client=self.client)
            try:
                await webhook.send(
                    content[:MAX_CONTENT], files=make(), embeds=embeds, wait=True,
                    allowed_mentions=discord.AllowedMentions.none(),
                )  # fmt: skip
                return
            except discord.HTTPException as exc:
                if too_large(exc):
                    raise AttachmentRefused() from exc
                if not token_gone(exc):
                    raise
                self.token_gone = True
                log.info("request %s's interaction token is gone; posting a message", self.request_id)
        await self.message(content, make, embeds)

    async def message(
        self,
        content: str,
        files: Callable[[], list[discord.File]],
        embeds: list[discord.Embed] | None = None,
    ) -> None:
        """Post the result where the command was used, mentioning the person: as a reply to the command's
        message, then (no Read Message History permission) as a plain message, then as a DM."""
        target = self.target
        user = discord.Object(int(target.user_id))
        text = f"<@{target.user_id}> {content}"[:MAX_CONTENT]
        attempts: list[
            tuple[str, Callable[[], Awaitable[discord.abc.Messageable]], discord.MessageReference | None]
        ]
        attempts = []
        if target.channel_id:
            channel = self.client.get_partial_messageable(
                int(target.channel_id), guild_id=int(target.guild_id) if target.guild_id else None
            )

            async def here() -> discord.abc.Messageable:
                return channel

            if target.message_id:
                reply = discord.MessageReference(
                    message_id=int(target.message_id), channel_id=channel.id, guild_id=channel.guild_id,
                    fail_if_not_exists=False,
                )  # fmt: skip
                attempts.append(("channel (reply)", here, reply))
            attempts.append(("channel", here, None))

        async def direct() -> discord.abc.Messageable:
            return await self.client.create_dm(user)

        attempts.append(("DM", direct, None))
        for name, place, reference in attempts:
            kwargs: dict[str, Any] = {
                "files": files(),
                "embeds": embeds or [],
                "allowed_mentions": discord.AllowedMentions(users=[user]),
            }
            if reference is not None:
                kwargs["reference"] = reference
            try:
                await (await place()).send(text, **kwargs)
                return
            except discord.HTTPException as exc:
                if too_large(exc):
                    raise AttachmentRefused() from exc
                if exc.status not in (403, 404):
                    raise
                log.info("cannot post request %s's result in the %s (%s)", self.request_id, name, exc.code)
        log.warning(
            "request %s could not be delivered: no channel or DM accepts the bot's messages", self.request_id
        )
