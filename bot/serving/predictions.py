"""One reading and one model run per message, shared by every feature that reads it.

Reactions and moderation hints both gate on what the model can read of a message
(``Engine.read``) and then need its 64 probabilities. discord.py runs each cog's
``on_message`` listener as its own task, so whichever asks first starts the work and the other
awaits the same future. Entries live a short while (listeners for one message run within
milliseconds of each other), keyed by message id; the text itself is never kept.

The reading runs in a thread, not on the event loop: tokenizing a 4,000-character message
takes 4-15 ms, more on a loaded machine (``benchmarks/readability_gate.py``), and a burst of
those would stall every other event. The worker tokenizes the text again when it predicts,
which costs about 1% of the model run it precedes for a typical message (up to a quarter for
the longest texts) and keeps the worker's interface text in, probabilities out.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, cast

import numpy as np

from bot.deepmoji.engine import Reading

Result = TypeVar("Result")


class Reader(Protocol):
    """What the model reads of a text (``Engine``)."""

    def read(self, text: str) -> Reading: ...


class Predictor(Protocol):
    """A text's 64 probabilities, computed away from the event loop (``InferenceWorker``)."""

    async def predict(self, text: str) -> np.ndarray: ...


#: How long a finished prediction stays available to late listeners.
DEFAULT_TTL_S = 30.0


class MessagePredictions:
    """``await read(message_id, text)`` and ``await predict(message_id, text)``, each computed
    once per message: the engine's ``Reading`` and the worker's probabilities."""

    def __init__(
        self,
        worker: Predictor,
        engine: Reader,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._worker = worker
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        #: message id -> (created, kind -> future)
        self._entries: OrderedDict[int, tuple[float, dict[str, asyncio.Future[object]]]] = OrderedDict()

    async def read(self, message_id: int, text: str) -> Reading:
        """What the model reads of this message (``Engine.read``), computed in a thread."""
        return await self._once(message_id, "reading", lambda: asyncio.to_thread(self._engine.read, text))

    async def predict(self, message_id: int, text: str) -> np.ndarray:
        """The probabilities for this message; errors (``Overloaded``) reach every caller."""
        return await self._once(message_id, "probabilities", lambda: self._worker.predict(text))

    async def _once(self, message_id: int, kind: str, start: Callable[[], Awaitable[Result]]) -> Result:
        self._expire()
        if message_id not in self._entries:
            self._entries[message_id] = (self._clock(), {})
        futures = self._entries[message_id][1]
        future = futures.get(kind)
        if future is None:
            future = futures[kind] = cast("asyncio.Future[object]", asyncio.ensure_future(start()))
            future.add_done_callback(_retrieve_exception)
        # shield: one caller being cancelled must not cancel the work the others wait for.
        return cast(Result, await asyncio.shield(future))

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        cutoff = self._clock() - self._ttl_s
        while self._entries:
            created, futures = next(iter(self._entries.values()))
            if created > cutoff or not all(future.done() for future in futures.values()):
                break
            self._entries.popitem(last=False)


def _retrieve_exception(future: asyncio.Future[object]) -> None:
    """Mark the error seen: callers that were cancelled never look at it."""
    if not future.cancelled():
        future.exception()
