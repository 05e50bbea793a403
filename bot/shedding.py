"""A message's handling ends counted, even when the settings store fails or shutdown interrupts it.

The listeners (reactions, moderation hints) run ``with shed_failures(...)`` around their work on
one message: a ``StoreError`` ends it as shed ``store_unavailable`` (logged once per interval
through ``failures``, not once per message), a cancellation (shutdown gave up waiting) as shed
``shutdown`` before it goes on. ``bot.serving.worker.failure_reason`` names the reason for a prediction
the inference worker failed (the worker itself logs those failures, once per interval).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.store import StoreError
from bot.throttled_log import ThrottledLog


@contextmanager
def shed_failures(shed: Callable[[str], None], failures: ThrottledLog, consequence: str) -> Iterator[None]:
    """Count (``shed(reason)``) and absorb a store failure; count and pass on a cancellation.

    ``consequence`` says what users miss, for the log: "messages get no reactions".
    """
    try:
        yield
    except StoreError as error:
        shed("store_unavailable")
        failures.log("store_unavailable", logging.WARNING, "%s: settings store unavailable: %s", consequence, error)
    except asyncio.CancelledError:
        shed("shutdown")
        raise
