"""The inference worker: the async front of the model, so the event loop never waits on torch.

Requests queue in memory with a priority: ``/why`` (``WHY``) before automatic reactions
(``REACTION``). A dispatcher gathers waiting predictions into micro-batches (up to ``max_batch``,
waiting at most ``max_wait_ms`` for batch mates) and runs ONE ``engine.predict(texts)`` per batch
in a thread pool; explanations run one at a time in the same pool. The queue is bounded: when it
is full a reaction is refused (``Overloaded``) and a ``/why`` evicts the oldest queued reaction,
so a ``/why`` never waits behind reactions. One bad text fails its own request, not its batch.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.errors import WhymojiError
from bot.metrics import Metrics

logger = logging.getLogger(__name__)

#: Shedding is logged at most this often (with the count since the last line), not per message.
SHED_LOG_INTERVAL_S = 30.0


class Priority(enum.IntEnum):
    """Lower runs first."""

    WHY = 0
    REACTION = 1


class Overloaded(WhymojiError):
    """Too much is waiting for the model; the request was dropped rather than queued."""


class WorkerStopped(WhymojiError):
    """The worker is not running (not started yet, or shutting down)."""


class ModelError(WhymojiError):
    """The model failed on this request (the cause is chained)."""


@dataclass(frozen=True)
class WorkerStatus:
    """The worker's state for ``/healthz``; durations in seconds of the worker's clock."""

    queued: int  #: requests waiting for the model (predictions, explanations not started)
    oldest_wait_s: float | None  #: how long the oldest of them has waited; None when none waits
    busy_for_s: float | None  #: how long the current batch or slice has run; None when idle
    idle_for_s: float | None  #: since the last batch or slice finished (or the start); None when busy
    running: bool  #: started, not closing, and its dispatcher alive


def _default_explain(engine: Any, text: str) -> Any:
    """``bot.explain.explain``, imported on first use so the worker does not need it to load."""
    from bot.explain import explain

    return explain(engine, text)


@dataclass(eq=False)
class _Request:
    kind: str  # "predict" or "explain"
    text: str
    priority: Priority
    future: asyncio.Future
    queued_at: float = field(default_factory=time.perf_counter)


class InferenceWorker:
    """Micro-batching, prioritised, bounded access to an engine's ``predict`` and ``explain``."""

    def __init__(
        self,
        engine: Any,
        *,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        queue_size: int = 256,
        threads: int = 1,
        metrics: Metrics | None = None,
        explain: Callable[[Any, str], Any] = _default_explain,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or threads < 1 or max_wait_ms < 0:
            raise ValueError("max_batch, queue_size and threads must be >= 1 and max_wait_ms >= 0")
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.threads = threads
        self.metrics = metrics or Metrics()
        self._explain = explain
        self._queues: dict[Priority, deque[_Request]] = {priority: deque() for priority in Priority}
        self._work = asyncio.Event()
        self._slots = asyncio.Semaphore(threads)
        self._running: set[asyncio.Task] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._dispatcher: asyncio.Task | None = None
        self._closing = False
        #: When each unit of work now in the pool started; when the last one finished.
        self._busy_since: dict[int, float] = {}
        self._last_finished: float | None = None
        self._shed_since_log = 0
        self._last_shed_log = float("-inf")

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._dispatcher is not None:
            raise RuntimeError("the inference worker is already started")
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="inference")
        self._dispatcher = asyncio.create_task(self._dispatch(), name="inference-dispatcher")
        self._last_finished = time.perf_counter()

    async def close(self, timeout: float = 5.0) -> None:
        """Stop taking work, finish what is queued within ``timeout``, fail the rest."""
        if self._closing:
            return
        self._closing = True
        self._work.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            if self._dispatcher is not None:
                # The dispatcher returns once everything queued has been handed to the pool.
                await asyncio.wait([self._dispatcher], timeout=timeout)
            if self._running:
                await asyncio.wait(list(self._running), timeout=max(0.0, deadline - loop.time()))
        finally:
            leftover = self._take_all()
            for request in leftover:
                self._fail(request, WorkerStopped("the inference worker shut down before this request ran"))
            if self._dispatcher is not None:
                self._dispatcher.cancel()
            for task in list(self._running):
                task.cancel()
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._update_depth()
            if leftover:
                logger.warning("inference worker closed with %d requests unfinished", len(leftover))

    # --- requests -------------------------------------------------------------------------

    async def predict(self, text: str, priority: Priority = Priority.REACTION) -> np.ndarray:
        """The 64 emoji probabilities of ``text``, computed in a batch with other requests."""
        return await self._submit("predict", text, Priority(priority))

    async def explain(self, text: str) -> Any:
        """Which words made the model pick its emojis (``bot.explain.Explanation``); priority WHY."""
        return await self._submit("explain", text, Priority.WHY)

    def depth(self) -> int:
        """Requests waiting (not yet handed to the model)."""
        return sum(len(queue) for queue in self._queues.values())

    def status(self) -> WorkerStatus:
        """Queue depth, the oldest wait, and how long the model has been busy or idle."""
        now = time.perf_counter()
        self._drop_abandoned()
        waiting = [request.queued_at for queue in self._queues.values() for request in queue]
        busy_since = min(self._busy_since.values(), default=None)
        idle = busy_since is None and self._last_finished is not None
        running = self._dispatcher is not None and not self._closing and not self._dispatcher.done()
        return WorkerStatus(
            queued=len(waiting),
            oldest_wait_s=now - min(waiting) if waiting else None,
            busy_for_s=None if busy_since is None else now - busy_since,
            idle_for_s=now - self._last_finished if idle else None,
            running=running,
        )

    async def _submit(self, kind: str, text: str, priority: Priority) -> Any:
        if self._dispatcher is None or self._closing or self._dispatcher.done():
            state = "not started" if self._dispatcher is None else "shutting down" if self._closing else "broken"
            raise WorkerStopped(f"the inference worker is {state}")
        self._drop_abandoned()
        if self.depth() >= self.queue_size:
            self._make_room(priority)
        request = _Request(kind, text, priority, asyncio.get_running_loop().create_future())
        self._queues[priority].append(request)
        self._update_depth()
        self._work.set()
        return await request.future

    def _make_room(self, priority: Priority) -> None:
        """The queue is full: refuse a reaction, or evict the oldest reaction for a /why."""
        if priority is Priority.REACTION:
            self._count_shed()
            raise Overloaded("too many messages are waiting for the model; this one was skipped")
        reactions = self._queues[Priority.REACTION]
        if not reactions:
            raise Overloaded("too many /why requests are waiting; try again in a moment")
        self._count_shed()
        self._fail(reactions.popleft(), Overloaded("dropped to make room for a /why request"))

    def _count_shed(self) -> None:
        self.metrics.reactions_shed.labels(reason="overload").inc()
        self._shed_since_log += 1
        now = time.monotonic()
        if now - self._last_shed_log >= SHED_LOG_INTERVAL_S:
            logger.warning(
                "inference queue full (%d waiting): %d reaction requests shed since the last report",
                self.queue_size,
                self._shed_since_log,
            )
            self._last_shed_log = now
            self._shed_since_log = 0

    # --- dispatching ----------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Hand work to the pool whenever a thread is free; gather batches while waiting."""
        try:
            while True:
                await self._slots.acquire()
                batch = await self._next_batch()
                if batch is None:
                    self._slots.release()
                    return
                task = asyncio.create_task(self._run(batch))
                self._running.add(task)
                task.add_done_callback(self._finished)
        except Exception:
            logger.exception("inference dispatcher failed; failing queued requests")
            for request in self._take_all():
                self._fail(request, WorkerStopped("the inference worker failed"))
            raise

    def _finished(self, task: asyncio.Task) -> None:
        self._running.discard(task)
        self._slots.release()

    async def _next_batch(self) -> list[_Request] | None:
        """The next unit of work: one explanation, or up to ``max_batch`` predictions.

        Returns ``None`` once the worker is closing and nothing is left.
        """
        while True:
            while not self._has_live_work():
                if self._closing:
                    return None
                self._work.clear()
                await self._work.wait()
            if self._peek().kind == "predict" and not self._closing:
                await self._gather_batch_mates()
            # Callers may have given up while we waited; then look again.
            if self._has_live_work() and (batch := self._take()):
                return batch

    async def _gather_batch_mates(self) -> None:
        """Wait up to ``max_wait_ms`` for more predictions, unless a batch is already full."""
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while self._count_predictions() < self.max_batch and not self._closing:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            self._work.clear()
            try:
                await asyncio.wait_for(self._work.wait(), remaining)
            except TimeoutError:
                return

    def _has_live_work(self) -> bool:
        self._drop_abandoned()
        return self.depth() > 0

    def _drop_abandoned(self) -> None:
        """Forget requests whose caller stopped waiting (cancelled futures)."""
        for queue in self._queues.values():
            while queue and queue[0].future.done():
                queue.popleft()

    def _peek(self) -> _Request:
        return next(queue[0] for queue in self._queues.values() if queue)

    def _count_predictions(self) -> int:
        return sum(1 for queue in self._queues.values() for request in queue if request.kind == "predict")

    def _take(self) -> list[_Request]:
        """Pop the highest-priority explanation alone, or predictions in priority order."""
        head = self._peek()
        if head.kind == "explain":
            self._queues[head.priority].popleft()
            self._update_depth()
            return [head]
        batch: list[_Request] = []
        for queue in self._queues.values():
            kept: deque[_Request] = deque()
            while queue:
                request = queue.popleft()
                if request.future.done():
                    continue
                if request.kind == "predict" and len(batch) < self.max_batch:
                    batch.append(request)
                else:
                    kept.append(request)
            queue.extend(kept)
        self._update_depth()
        return batch

    def _take_all(self) -> list[_Request]:
        requests = [request for queue in self._queues.values() for request in queue]
        for queue in self._queues.values():
            queue.clear()
        return requests

    # --- running --------------------------------------------------------------------------

    async def _run(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        kind = batch[0].kind
        if kind == "explain":
            job = (_explain_one, self._explain, self.engine, batch[0].text)
        else:
            self.metrics.batch_size.observe(len(batch))
            job = (_predict_batch, self.engine, [request.text for request in batch])
        self._busy_since[id(batch)] = time.perf_counter()
        try:
            outcomes = await loop.run_in_executor(self._pool, *job)
        except asyncio.CancelledError:  # closing ran out of time: nobody is left waiting forever
            for request in batch:
                self._fail(request, WorkerStopped("the inference worker shut down while this request ran"))
            raise
        except Exception as error:  # the pool itself failed (e.g. shut down)
            outcomes = [error] * len(batch)
        finally:
            del self._busy_since[id(batch)]
            self._last_finished = time.perf_counter()
        done_at = self._last_finished
        for request, outcome in zip(batch, outcomes, strict=True):
            self.metrics.inference_seconds.labels(kind=kind).observe(done_at - request.queued_at)
            if isinstance(outcome, BaseException):
                self._fail(request, outcome)
            elif not request.future.done():
                request.future.set_result(outcome)

    def _fail(self, request: _Request, error: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(error)

    def _update_depth(self) -> None:
        self.metrics.queue_depth.set(self.depth())


def _explain_one(explain: Callable[[Any, str], Any], engine: Any, text: str) -> list[Any]:
    """Runs in the pool: one explanation, or its error."""
    try:
        return [explain(engine, text)]
    except Exception as error:
        return [error]


def _predict_batch(engine: Any, texts: Sequence[str]) -> list[Any]:
    """Runs in the pool: one model call for the batch; if it fails, each text on its own.

    The retry isolates a bad text (e.g. one without tokens) so that only its request fails.
    """
    try:
        rows = engine.predict(list(texts))
        if len(rows) != len(texts):
            raise RuntimeError(f"the engine returned {len(rows)} rows for {len(texts)} texts")
        return [np.array(row, copy=True) for row in rows]
    except Exception as error:
        if len(texts) == 1:
            return [error]
        logger.debug("batch of %d failed (%s); running its texts one by one", len(texts), error)
    outcomes: list[Any] = []
    for text in texts:
        try:
            outcomes.append(np.array(engine.predict([text])[0], copy=True))
        except Exception as error:
            outcomes.append(error)
    return outcomes
