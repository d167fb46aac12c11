"""Contributed lyrics for the next fine-tune: checked, de-duplicated, stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.services.text import LyricsRejected, clean_lyrics
from bot.storage.errors import DuplicateLyrics

if TYPE_CHECKING:
    from bot.storage.records import LyricsStats, LyricsSubmission
    from bot.storage.repo import Repository

ALLOWED_SUFFIXES = (".txt",)


class LyricsService:
    def __init__(self, repo: Repository, *, max_bytes: int) -> None:
        self.repo = repo
        self.max_bytes = max_bytes

    async def submit(
        self,
        raw: bytes | str,
        *,
        guild_id: int | None,
        user_id: int,
        filename: str | None = None,
    ) -> LyricsSubmission:
        """Check and store; LyricsRejected with the reason (size, binary, duplicate, ...)."""
        if filename is not None and not filename.lower().endswith(ALLOWED_SUFFIXES):
            raise LyricsRejected(f"attach a plain .txt file, not {filename!r}")
        text = clean_lyrics(raw, max_bytes=self.max_bytes)
        try:
            return await self.repo.add_lyrics(guild_id=guild_id, user_id=user_id, text=text)
        except DuplicateLyrics as exc:
            raise LyricsRejected(
                f"those lyrics were contributed already (submission #{exc.existing_id})."
            ) from None

    async def stats(self) -> LyricsStats:
        return await self.repo.lyrics_stats()
