"""One model run per message, shared by every feature that reads it.

Reactions and moderation hints both need a message's 64 probabilities. discord.py runs each
cog's ``on_message`` listener as its own task, so whichever asks first starts the prediction
and the other awaits the same future. Entries live a short while (listeners for one message run
within milliseconds of each other), keyed by message id; the text itself is never kept.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

#: How long a finished prediction stays available to late listeners.
DEFAULT_TTL_S = 30.0


class MessagePredictions:
    """``await predict(message_id, text)``: the worker's answer, computed once per message."""

    def __init__(
        self, worker: Any, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._worker = worker
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[int, tuple[float, asyncio.Future[np.ndarray]]] = OrderedDict()

    async def predict(self, message_id: int, text: str) -> np.ndarray:
        """The probabilities for this message; errors (``Overloaded``) reach every caller."""
        self._expire()
        entry = self._entries.get(message_id)
        if entry is None:
            future = asyncio.ensure_future(self._worker.predict(text))
            future.add_done_callback(_retrieve_exception)
            self._entries[message_id] = (self._clock(), future)
        else:
            future = entry[1]
        # shield: one caller being cancelled must not cancel the run the others wait for.
        return await asyncio.shield(future)

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl_s
        while self._entries:
            created, future = next(iter(self._entries.values()))
            if created > cutoff or not future.done():
                break
            self._entries.popitem(last=False)


def _retrieve_exception(future: asyncio.Future) -> None:
    """Mark the error seen: callers that were cancelled never look at it."""
    if not future.cancelled():
        future.exception()


def shared_predictions(bot: Any) -> MessagePredictions:
    """The bot's one ``MessagePredictions``, created by whichever cog asks first."""
    predictions = getattr(bot, "message_predictions", None)
    if predictions is None:
        predictions = MessagePredictions(bot.worker)
        bot.message_predictions = predictions
    return predictions
