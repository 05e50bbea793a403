"""How the settings database is doing, for ``/healthz``: from every access, and from checks of
its own on a schedule.

Every message reads the store, so its accesses are a free, continuous probe: the last one that
succeeded, whether the last read and the last write failed (and how), and how long the oldest
unfinished one has been waiting (a hung server fails nothing until its timeout, but its
accesses age). A quiet server makes no accesses, and a server whose writes fail rarely writes,
so ``StoreChecks`` also asks the store itself every few seconds (a read and a write that change
nothing, each with a short timeout): ``/healthz`` tells the present within one interval of the
database going away or coming back.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

logger = logging.getLogger(__name__)

READ, WRITE = "read", "write"
#: How often ``StoreChecks`` asks the store, and how long each of its accesses may take.
CHECK_INTERVAL_S = 5.0
CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class StoreStatus:
    """A snapshot. ``failing``: the last finished read failed (``error`` says how), so the bot
    cannot read its settings; ``oldest_pending_s``: how long the oldest unfinished read has
    waited. ``writes_failing``, ``write_error``, ``oldest_pending_write_s``: the same of writes,
    which can fail (or wait for a lock) while reads are fine: settings cannot be changed."""

    failing: bool
    error: str | None
    last_ok_s_ago: float | None
    oldest_pending_s: float | None
    writes_failing: bool = False
    write_error: str | None = None
    oldest_pending_write_s: float | None = None


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


class AccessTracker:
    """Records the outcome of each access made inside ``with tracker.access(kind):``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ids = itertools.count()
        self._pending: dict[str, dict[int, float]] = {READ: {}, WRITE: {}}
        self._last_ok: float | None = None
        self._errors: dict[str, str | None] = {READ: None, WRITE: None}

    @contextmanager
    def access(self, kind: str = READ) -> Iterator[None]:
        """Track one access (``READ`` or ``WRITE``): an exception marks that kind failing, a
        success clears it. A cancelled access (the caller gave up) says nothing either way."""
        key = next(self._ids)
        pending = self._pending[kind]
        pending[key] = self._clock()
        try:
            yield
        except Exception as error:
            self.record(kind, error)
            raise
        else:
            self.record(kind, None)
        finally:
            del pending[key]

    def record(self, kind: str, error: BaseException | str | None) -> None:
        """An outcome found out otherwise (a check that timed out): ``None`` is a success."""
        if error is None:
            self._last_ok = self._clock()
            self._errors[kind] = None
        else:
            self._errors[kind] = error if isinstance(error, str) else _describe(error)

    def status(self) -> StoreStatus:
        now = self._clock()

        def waited(kind: str) -> float | None:
            oldest = min(self._pending[kind].values(), default=None)
            return None if oldest is None else now - oldest

        return StoreStatus(
            failing=self._errors[READ] is not None,
            error=self._errors[READ],
            last_ok_s_ago=None if self._last_ok is None else now - self._last_ok,
            oldest_pending_s=waited(READ),
            writes_failing=self._errors[WRITE] is not None,
            write_error=self._errors[WRITE],
            oldest_pending_write_s=waited(WRITE),
        )


class StoreChecks:
    """Runs ``check`` (one bounded look at the store that records its own outcome) now and then
    every ``interval_s``, until ``stop``. ``sleep`` is injectable, so tests step it."""

    def __init__(
        self,
        check: Callable[[], Awaitable[None]],
        *,
        interval_s: float = CHECK_INTERVAL_S,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self._check = check
        self._interval_s = interval_s
        self._sleep = sleep
        self._task: asyncio.Task[None] | None = None
        self.checks = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="whymoji store checks")

    async def _run(self) -> None:
        while True:
            try:
                await self._check()
            except Exception:  # a check records what it finds; anything else is a bug, not an outage
                logger.exception("settings store check failed")
            self.checks += 1
            await self._sleep(self._interval_s)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
