"""Recurring problems logged once per interval and kind, with a count, not once per event.

A failing dependency (the model, the database) fails every request that needs it; a line or a
traceback per request would bury the log and cost more than the failure. ``ThrottledLog``
writes the first occurrence of a kind at once, then at most one line per ``interval_s`` saying
how many more happened since the last line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

#: Default spacing of the lines about one kind of problem.
DEFAULT_INTERVAL_S = 30.0


class ThrottledLog:
    """``log(kind, level, message, *args)``: at most one line per ``interval_s`` for each ``kind``."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._clock = clock
        #: kind -> [when its last line was written, occurrences since then]
        self._kinds: dict[str, list[float]] = {}

    def log(self, kind: str, level: int, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``kind`` was logged less than ``interval_s`` ago.

        Returns whether a line was written. A line after a quiet spell says how many
        occurrences it stands for.
        """
        now = self._clock()
        entry = self._kinds.get(kind)
        if entry is not None and now - entry[0] < self._interval_s:
            entry[1] += 1
            return False
        unreported = int(entry[1]) if entry is not None else 0
        if unreported:
            message = f"{message} (and {unreported} more like it since the last report)"
        self._logger.log(level, message, *args)
        self._kinds[kind] = [now, 0]
        return True
