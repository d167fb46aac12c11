"""Per-member cooldowns: how long a member must wait before the bot writes for them again."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class Cooldowns:
    """A rate limit of one action per ``seconds`` per key (e.g. ``(guild_id, user_id)``).

    In memory on purpose: a restart forgiving a cooldown is harmless, and a table written
    on every request is not. ``clock`` is injectable so tests do not sleep.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[Hashable, float] = {}

    def remaining(self, key: Hashable) -> float:
        """Seconds ``key`` must still wait (0.0 when it may go now)."""
        return max(0.0, self._until.get(key, 0.0) - self._clock())

    def hit(self, key: Hashable, seconds: float) -> float:
        """Start the cooldown if ``key`` may go: returns 0.0, or the wait left if it may not."""
        left = self.remaining(key)
        if left > 0:
            return left
        if seconds > 0:
            self._until[key] = self._clock() + seconds
            if len(self._until) > 10_000:
                self._prune()
        return 0.0

    def reset(self, key: Hashable) -> None:
        """Forget ``key``'s cooldown (its request failed before anything was written)."""
        self._until.pop(key, None)

    def _prune(self) -> None:
        now = self._clock()
        self._until = {k: t for k, t in self._until.items() if t > now}
