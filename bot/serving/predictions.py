"""One reading and one model run per message, shared by every feature that reads it.

Reactions and moderation hints both gate on what the model can read of a message
(``Engine.read``) and then need its 64 probabilities. discord.py runs each cog's
``on_message`` listener as its own task, so whichever asks first starts the work and the other
awaits the same future. Entries live a short while (listeners for one message run within
milliseconds of each other), keyed by message id; the text itself is never kept.

The reading runs in a thread of its own, not on the event loop: tokenizing a 4,000-character
message takes 4-15 ms, more on a loaded machine (``benchmarks/readability_gate.py``), and a
burst of those would stall every other event. One thread: reading is Python under the GIL, so
more would not read faster, and each thread would get a heap of its own. The worker tokenizes
the text again when it predicts, which costs about 1% of the model run it precedes for a typical
message (up to a quarter for the longest texts) and keeps the worker's interface text in,
probabilities out.

Messages in flight are bounded: each listener holds its message with ``handle(message_id)``
before it does anything else, and while ``max_in_flight`` messages are held (the app passes
``worker.queue_size``), a new one is refused with ``Overloaded`` at once, before its settings
are read or its text normalised, and the features shed it (``overload``). Every message in
flight holds its text and discord.py's message until its listeners end, so without the bound a
burst of 2,000 4,000-character messages within a second held all of them at once and took the
bot over its memory budget (benchmarks/README.md, *Memory: a burst of messages*).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from functools import partial
from typing import Protocol, TypeVar, cast

import numpy as np

from bot.deepmoji.engine import Reading
from bot.serving.worker import Overloaded
from bot.throttled_log import ThrottledLog

log = logging.getLogger(__name__)

Result = TypeVar("Result")


class Reader(Protocol):
    """What the model reads of a text (``Engine``)."""

    def read(self, text: str) -> Reading: ...


class Predictor(Protocol):
    """A text's 64 probabilities, computed away from the event loop (``InferenceWorker``)."""

    async def predict(self, text: str) -> np.ndarray: ...


#: How long a finished prediction stays available to late listeners.
DEFAULT_TTL_S = 30.0
#: Messages handled at once (held by a listener), beyond which new ones are refused.
DEFAULT_MAX_IN_FLIGHT = 256


class MessagePredictions:
    """``await read(message_id, text)`` and ``await predict(message_id, text)``, each computed
    once per message: the engine's ``Reading`` and the worker's probabilities."""

    def __init__(
        self,
        worker: Predictor,
        engine: Reader,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self._worker = worker
        self._engine = engine
        self._ttl_s = ttl_s
        self.max_in_flight = max_in_flight
        self._clock = clock
        #: message id -> (created, kind -> future)
        self._entries: OrderedDict[int, tuple[float, dict[str, asyncio.Future[object]]]] = OrderedDict()
        #: Message id -> listeners holding it (``handle``).
        self._held: Counter[int] = Counter()
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whymoji reading")
        self._log = ThrottledLog(log)

    async def read(self, message_id: int, text: str) -> Reading:
        """What the model reads of this message (``Engine.read``), computed in the reading thread."""
        loop = asyncio.get_running_loop()
        return await self._once(
            message_id, "reading", lambda: loop.run_in_executor(self._reader, partial(self._engine.read, text))
        )

    async def predict(self, message_id: int, text: str) -> np.ndarray:
        """The probabilities for this message; errors (``Overloaded``) reach every caller."""
        return await self._once(message_id, "probabilities", lambda: self._worker.predict(text))

    def handle(self, message_id: int) -> AbstractContextManager[None]:
        """Admit a listener's work on this message now, or raise ``Overloaded`` when
        ``max_in_flight`` other messages are being handled; ``with`` the result while working.
        A message already held (the other listener's) is always admitted."""
        if message_id not in self._held and len(self._held) >= self.max_in_flight:
            self._log.log(
                "in_flight",
                logging.WARNING,
                "%d messages are being handled: shedding new ones until some are done",
                len(self._held),
            )
            raise Overloaded("too many messages are being handled; this one was skipped")
        self._held[message_id] += 1
        return self._holding(message_id)

    @contextmanager
    def _holding(self, message_id: int) -> Iterator[None]:
        try:
            yield
        finally:
            self._held[message_id] -= 1
            if not self._held[message_id]:
                del self._held[message_id]

    def in_flight(self) -> int:
        """Messages being handled now."""
        return len(self._held)

    def close(self) -> None:
        """Stop the reading thread once it has read what it was given (shutdown)."""
        self._reader.shutdown(wait=False, cancel_futures=True)

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
