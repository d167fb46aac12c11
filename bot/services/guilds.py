"""Per-server settings (explicit filter, cooldown, channels) and who counts as an admin."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from bot.services.text import DEFAULT_EXPLICIT_WORDS, explicit_pattern, mask_explicit
from rgpt2.errors import RGPT2Error

if TYPE_CHECKING:
    from bot.storage.records import GuildSettings
    from bot.storage.repo import Repository


class NotAllowed(RGPT2Error):
    """A member asked for something only admins may do."""


MAX_COOLDOWN_SECONDS = 3600.0


class GuildService:
    def __init__(
        self,
        repo: Repository,
        *,
        default_cooldown: float,
        admin_ids: Iterable[int] = (),
        explicit_words: Iterable[str] = DEFAULT_EXPLICIT_WORDS,
    ) -> None:
        self.repo = repo
        self.default_cooldown = default_cooldown
        self.admin_ids = frozenset(admin_ids)
        self._pattern: re.Pattern[str] = explicit_pattern(explicit_words)

    def is_admin(self, user_id: int, *, manages_server: bool) -> bool:
        return manages_server or user_id in self.admin_ids

    def require_admin(self, user_id: int, *, manages_server: bool) -> None:
        if not self.is_admin(user_id, manages_server=manages_server):
            raise NotAllowed(
                "only server managers and the bot's configured admins can use /admin commands."
            )

    async def get(self, guild_id: int | None) -> GuildSettings | None:
        if guild_id is None:
            return None
        return await self.repo.get_guild_settings(guild_id)

    async def cooldown_seconds(self, guild_id: int | None) -> float:
        settings = await self.get(guild_id)
        if settings is None or settings.cooldown_seconds is None:
            return self.default_cooldown
        return settings.cooldown_seconds

    async def channel_allowed(self, guild_id: int | None, channel_id: int | None) -> bool:
        settings = await self.get(guild_id)
        return settings is None or settings.channel_allowed(channel_id)

    async def allowed_channels(self, guild_id: int | None) -> tuple[int, ...]:
        settings = await self.get(guild_id)
        return () if settings is None else settings.allowed_channel_ids

    async def display_text(self, guild_id: int | None, text: str) -> str:
        """``text`` as this server shows it: masked when its explicit filter says so."""
        settings = await self.get(guild_id)
        if settings is not None and settings.explicit_filter == "mask":
            return mask_explicit(text, self._pattern)
        return text

    async def update(
        self,
        guild_id: int,
        *,
        explicit_filter: str | None = None,
        cooldown_seconds: float | None = None,
        add_channel: int | None = None,
        remove_channel: int | None = None,
        all_channels: bool = False,
    ) -> GuildSettings:
        """Change what was given, keep the rest; the new settings."""
        current = await self.repo.get_guild_settings(guild_id)
        if explicit_filter is not None and explicit_filter not in ("off", "mask"):
            raise RGPT2Error(f"the explicit filter is off or mask, not {explicit_filter!r}")
        if cooldown_seconds is not None and not 0 <= cooldown_seconds <= MAX_COOLDOWN_SECONDS:
            raise RGPT2Error(
                f"the cooldown must be between 0 and {MAX_COOLDOWN_SECONDS:.0f} seconds"
            )
        channels = list(current.allowed_channel_ids)
        if all_channels:
            channels = []
        if add_channel is not None and add_channel not in channels:
            channels.append(add_channel)
        if remove_channel is not None and remove_channel in channels:
            channels.remove(remove_channel)
        return await self.repo.update_guild_settings(
            guild_id,
            explicit_filter=explicit_filter or current.explicit_filter,
            cooldown_seconds=(
                cooldown_seconds if cooldown_seconds is not None else current.cooldown_seconds
            ),
            allowed_channel_ids=tuple(channels),
        )

    def describe(self, settings: GuildSettings) -> list[tuple[str, str]]:
        channels = ", ".join(f"<#{c}>" for c in settings.allowed_channel_ids) or "every channel"
        cooldown = (
            f"{settings.cooldown_seconds:g} s"
            if settings.cooldown_seconds is not None
            else f"{self.default_cooldown:g} s (bot default)"
        )
        return [
            ("Explicit filter", settings.explicit_filter),
            ("Cooldown", cooldown),
            ("Channels", channels),
        ]
