"""Why a message's handling ended without its result, and the guard that makes every one count.

``ShedReason`` names each way a message can be shed: the labels of
``whymoji_reactions_shed_total{reason}`` and ``whymoji_moderation_hints_shed_total{reason}``.
The feature that sheds counts it; nothing else writes those metrics.

The listeners (reactions, moderation hints) run ``with shed_failures(...)`` around their work on
one message: a ``StoreError`` ends it as ``STORE_UNAVAILABLE`` (logged once per interval through
``failures``, not once per message), a cancellation (shutdown gave up waiting) as ``SHUTDOWN``
before it goes on. A failed prediction is named by the worker's outcome
(``ShedReason(failure_reason(error))``, ``bot.serving.worker``); the worker logs those failures.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.store.errors import StoreError
from bot.throttled_log import ThrottledLog


class ShedReason(enum.StrEnum):
    """Why a message got no reactions (or no hint), as the metrics label it."""

    # The server's rules (bot.rules.reactions) and pauses.
    UNREADABLE = "unreadable"
    CHANCE = "chance"
    DISTRESS = "distress"
    COOLDOWN = "cooldown"
    # A dependency failed or the bot is stopping; the first four are the worker's outcomes.
    OVERLOAD = "overload"
    SHUTDOWN = "shutdown"
    MODEL_ERROR = "model_error"
    REFUSED = "refused"
    STORE_UNAVAILABLE = "store_unavailable"
    # Discord would not take the reaction or the hint.
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    BLOCKED = "blocked"
    MESSAGE_GONE = "message_gone"
    UNKNOWN_EMOJI = "unknown_emoji"
    HTTP_ERROR = "http_error"
    POST_FAILED = "post_failed"
    CHANNEL_UNUSABLE = "channel_unusable"


@contextmanager
def shed_failures(shed: Callable[[ShedReason], None], failures: ThrottledLog, consequence: str) -> Iterator[None]:
    """Count (``shed(reason)``) and absorb a store failure; count and pass on a cancellation.

    ``consequence`` says what users miss, for the log: "messages get no reactions".
    """
    try:
        yield
    except StoreError as error:
        shed(ShedReason.STORE_UNAVAILABLE)
        failures.log("store_unavailable", logging.WARNING, "%s: settings store unavailable: %s", consequence, error)
    except asyncio.CancelledError:
        shed(ShedReason.SHUTDOWN)
        raise
