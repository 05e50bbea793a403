"""Cool-downs keyed by anything hashable: a channel for reactions, (user, channel) for hints."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable


class Cooldown:
    """Says whether a key may fire now, and if so starts its pause.

    The pause length is given per call because servers choose their own. Memory stays bounded:
    past ``max_keys`` entries, expired ones go first, then the oldest.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._until: OrderedDict[Hashable, float] = OrderedDict()

    def try_acquire(self, key: Hashable, cooldown_s: float) -> bool:
        """True (and the pause starts) when ``key`` is not pausing; False while it is."""
        now = self._clock()
        until = self._until.get(key)
        if until is not None and now < until:
            return False
        self._until[key] = now + cooldown_s
        self._until.move_to_end(key)
        if len(self._until) > self._max_keys:
            self._prune(now)
        return True

    def remaining(self, key: Hashable) -> float:
        """Seconds until ``key`` may fire again; 0.0 when it may now."""
        until = self._until.get(key)
        return 0.0 if until is None else max(0.0, until - self._clock())

    def __len__(self) -> int:
        return len(self._until)

    def _prune(self, now: float) -> None:
        for key in [key for key, until in self._until.items() if until <= now]:
            del self._until[key]
        while len(self._until) > self._max_keys:
            self._until.popitem(last=False)
