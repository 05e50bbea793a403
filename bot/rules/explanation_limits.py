"""Who may start an explanation now, so that no user or server can keep the model to itself.

An explanation costs the model hundreds of times what a reaction does. Without limits one person
repeating ``/why`` on long messages stalled every reaction for minutes. The limits, checked in
memory so a refusal is immediate:

- one explanation at a time per user (a second request gets a polite "one at a time");
- a pause per user between requests (``why.cooldown_s``);
- at most ``why.max_per_server`` explanations at once in one server, moderation hints included.

The inference worker shares the model fairly among what these limits let through.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.errors import WhymojiError
from bot.rules.cooldown import Cooldown


class ExplanationLimitReached(WhymojiError):
    """An explanation may not start now; the message says why, politely, for the asker."""


class ExplanationLimits:
    """``with limits.slot(guild_id, user_id):`` holds a place for one explanation in the block."""

    def __init__(self, *, cooldown_s: float, max_per_server: int, clock: Callable[[], float] = time.monotonic):
        if cooldown_s < 0 or max_per_server < 1:
            raise ValueError("cooldown_s must be >= 0 and max_per_server >= 1")
        self.cooldown_s = cooldown_s
        self.max_per_server = max_per_server
        self._cooldown = Cooldown(clock)
        self._busy_users: set[int] = set()
        self._running: Counter[int | None] = Counter()

    @contextmanager
    def slot(self, guild_id: int | None, user_id: int | None = None) -> Iterator[None]:
        """Admit one explanation or raise ``ExplanationLimitReached``; the place is freed on exit.

        ``user_id`` is the person who asked; without one (a moderation hint) only the server's
        cap applies. The user's pause starts when a request is admitted, not when refused.
        """
        self._admit(guild_id, user_id)
        if user_id is not None:
            self._cooldown.try_acquire(user_id, self.cooldown_s)
            self._busy_users.add(user_id)
        self._running[guild_id] += 1
        try:
            yield
        finally:
            self._running[guild_id] -= 1
            if not self._running[guild_id]:
                del self._running[guild_id]
            self._busy_users.discard(user_id)

    def _admit(self, guild_id: int | None, user_id: int | None) -> None:
        if user_id in self._busy_users:
            raise ExplanationLimitReached("I'm still explaining your last request: one at a time, please.")
        if guild_id is not None and self._running[guild_id] >= self.max_per_server:
            raise ExplanationLimitReached(
                "I'm explaining as much as I can for this server right now; please try again in a moment."
            )
        if user_id is not None and (wait := self._cooldown.remaining(user_id)) > 0:
            raise ExplanationLimitReached(f"Please wait {math.ceil(wait)} s before your next explanation.")
