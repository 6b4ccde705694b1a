"""Where a Discord request is answered: the interaction's reply while its token lives, else the channel the
command was used in (or a DM). Stored in the request's `target`, so a restarted bot can finish it."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import discord

from core.i18n import current


@dataclass
class Target:
    app_id: str
    token: str
    user_id: str
    expires_at: float  # epoch seconds after which the interaction token is not used any more
    filesize_limit: int
    channel_id: str | None = None
    guild_id: str | None = None
    message_id: str | None = None
    interaction_id: str | None = None
    # A select menu's choice: the token's `@original` is the menu's message (a component interaction's
    # message), which `message_id` names for replies in the channel once the token is gone.
    edit_original: bool = False
    # The language of the person it answers: a delivery (even one resumed after a restart) speaks it.
    locale: str | None = None

    @classmethod
    def from_interaction(
        cls,
        interaction: discord.Interaction,
        *,
        ttl_s: float,
        message_id: int | None,
        edit_original: bool = False,
    ) -> Target:
        return cls(
            app_id=str(interaction.application_id),
            token=interaction.token,
            user_id=str(interaction.user.id),
            expires_at=time.time() + ttl_s,
            filesize_limit=int(interaction.filesize_limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES),
            channel_id=str(interaction.channel_id) if interaction.channel_id else None,
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
            message_id=str(message_id) if message_id else None,
            interaction_id=str(interaction.id),
            edit_original=edit_original,
            locale=current(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        """The target stored with a request; ValueError when it lacks what a delivery needs."""
        missing = [key for key in ("app_id", "token", "user_id") if not data.get(key)]
        if missing:
            raise ValueError(f"Discord target without {', '.join(missing)}")
        optional = ("channel_id", "guild_id", "message_id", "interaction_id")
        return cls(
            app_id=str(data["app_id"]),
            token=str(data["token"]),
            user_id=str(data["user_id"]),
            expires_at=float(data.get("expires_at") or 0),
            filesize_limit=int(data.get("filesize_limit") or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES),
            edit_original=bool(data.get("edit_original")),
            locale=data.get("locale") or None,
            **{key: str(data[key]) if data.get(key) else None for key in optional},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def alive(self) -> bool:
        return time.time() < self.expires_at
