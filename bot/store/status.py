"""How the settings database is doing, from the accesses the bot makes anyway (for ``/healthz``).

Every message reads the store, so its accesses are a free, continuous probe: the last one that
succeeded, whether the last one failed (and how), and how long the oldest unfinished one has
been waiting (a hung server fails nothing until its timeout, but its accesses age).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class StoreStatus:
    """A snapshot: ``failing`` when the last finished access failed (``error`` says how)."""

    failing: bool
    error: str | None
    last_ok_s_ago: float | None
    oldest_pending_s: float | None


class AccessTracker:
    """Records the outcome of each access made inside ``with tracker.access():``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ids = itertools.count()
        self._pending: dict[int, float] = {}
        self._last_ok: float | None = None
        self._error: str | None = None

    @contextmanager
    def access(self) -> Iterator[None]:
        """Track one access; an exception marks the store failing, a success clears that.

        A cancelled access (the caller gave up) says nothing about the store either way.
        """
        key = next(self._ids)
        self._pending[key] = self._clock()
        try:
            yield
        except Exception as error:
            self._error = str(error) or type(error).__name__
            raise
        else:
            self._last_ok = self._clock()
            self._error = None
        finally:
            del self._pending[key]

    def status(self) -> StoreStatus:
        now = self._clock()
        oldest = min(self._pending.values(), default=None)
        return StoreStatus(
            failing=self._error is not None,
            error=self._error,
            last_ok_s_ago=None if self._last_ok is None else now - self._last_ok,
            oldest_pending_s=None if oldest is None else now - oldest,
        )
