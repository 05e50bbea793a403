"""The inference worker: the async front of the model, so the event loop never waits on torch.

Predictions queue in memory with a priority (``WHY`` before ``REACTION``) and are gathered into
micro-batches (up to ``max_batch``, waiting at most ``max_wait_ms`` for batch mates): ONE
``engine.predict(texts)`` per batch, in a thread pool. An explanation runs in slices
(``bot.explain.explain_steps``, ~25-100 ms each) between batches: while predictions wait,
explanations get at most ``EXPLANATION_SHARE`` of the model's time, however long their slices,
so reactions keep flowing during any ``/why``. At most ``explanations_in_progress`` explanations
are under way at once and take turns (round-robin); the others wait their turn to start. Each
one under way holds its state (~50 MB at the default 40 tokens with the full-size model), so the default
is 1: explanations one after the other, each bounded by the engine's ``max_tokens``.

Bounds, so no request takes the model over: at most ``queue_size`` predictions wait (a reaction
beyond it is refused with ``Overloaded``; a ``WHY`` prediction evicts the oldest waiting
reaction); at most ``max_explanations`` explanations are admitted at once, waiting or in
progress, and more are refused with ``Overloaded``. The engine reads at most ``max_tokens``
tokens of any text. One bad text fails its own request, not its batch.

Every request ends one way, counted in ``whymoji_worker_requests{kind, outcome}``: ``done``,
``refused`` (the text itself, e.g. ``EmptyTextError``), ``overload``, ``shutdown``
(``WorkerStopped``), ``model_error`` (the engine failed: ``ModelError``, the cause chained) or
``abandoned`` (the caller stopped waiting): ``Outcome``. What a failed request costs a feature
(a message without reactions) is that feature's to count: the worker raises, it never writes
another feature's metric.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, NoReturn, cast

import numpy as np

from bot.errors import WhymojiError
from bot.metrics import Metrics
from bot.throttled_log import ThrottledLog

if TYPE_CHECKING:
    from bot.deepmoji.engine import Engine
    from bot.explain.explanation import Explanation
    from bot.explain.steps import Steps

logger = logging.getLogger(__name__)

#: How long ``close`` waits, after its deadline, for the batch or slice a thread is running.
STOP_WAIT_S = 2.0
#: Most of the model's time explanations take while predictions (reactions) wait.
EXPLANATION_SHARE = 1 / 3


class RequestKind(enum.StrEnum):
    """What a request asks of the model; the ``kind`` label of the worker's metrics."""

    PREDICT = "predict"
    EXPLAIN = "explain"


PREDICT = RequestKind.PREDICT
EXPLAIN = RequestKind.EXPLAIN


class Outcome(enum.StrEnum):
    """How a request ended; the ``outcome`` label of ``whymoji_worker_requests_total``."""

    DONE = "done"
    REFUSED = "refused"  # the text itself (EmptyTextError)
    OVERLOAD = "overload"  # Overloaded
    SHUTDOWN = "shutdown"  # WorkerStopped
    MODEL_ERROR = "model_error"  # ModelError
    ABANDONED = "abandoned"  # the caller stopped waiting


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


ExplainSteps = Callable[["Engine", str], "Steps[Explanation]"]


def _default_explain_steps(engine: Engine, text: str) -> Steps[Explanation]:
    """``bot.explain.explain_steps``, imported on first use so the worker does not need it to load."""
    from bot.explain import explain_steps

    return explain_steps(engine, text)


@dataclass(eq=False)
class _Request:
    kind: RequestKind
    text: str
    priority: Priority
    future: asyncio.Future
    queued_at: float
    started: bool = False  # an explanation: its first slice was handed to a thread
    steps: Steps[Explanation] | None = None  # an explanation's slices, once its first slice has run


#: What a slice returns when its explanation has more slices to run.
_MORE = object()


class InferenceWorker:
    """Micro-batched predictions and sliced explanations, shared fairly, bounded, stoppable."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 32,
        max_wait_ms: float = 5.0,
        queue_size: int = 256,
        max_explanations: int = 4,
        explanations_in_progress: int = 1,
        threads: int = 1,
        metrics: Metrics | None = None,
        explain_steps: ExplainSteps = _default_explain_steps,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if min(max_batch, queue_size, max_explanations, explanations_in_progress, threads) < 1 or max_wait_ms < 0:
            raise ValueError(
                "max_batch, queue_size, max_explanations, explanations_in_progress and threads must be >= 1"
                " and max_wait_ms >= 0"
            )
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.queue_size = queue_size
        self.max_explanations = max_explanations
        self.explanations_in_progress = explanations_in_progress
        self.threads = threads
        self.metrics = metrics or Metrics()
        self._explain_steps = explain_steps
        self._clock = clock
        self._predictions: dict[Priority, deque[_Request]] = {priority: deque() for priority in Priority}
        #: Explanations waiting for their next (or first) slice, in turn order.
        self._turns: deque[_Request] = deque()
        #: Every admitted explanation not yet ended: in ``_turns`` or running a slice.
        self._explanations: set[_Request] = set()
        #: The batches and slices on a thread: task -> (when it started, its requests).
        self._busy: dict[asyncio.Task, tuple[float, list[_Request]]] = {}
        #: Model time each kind has used since both last had work waiting (see ``_take``).
        self._time_used = {PREDICT: 0.0, EXPLAIN: 0.0}
        self._last_finished: float | None = None
        self._work = asyncio.Event()
        self._slots = asyncio.Semaphore(threads)
        self._pool: ThreadPoolExecutor | None = None
        self._dispatcher: asyncio.Task | None = None
        self._closing = False
        self._log = ThrottledLog(logger)

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._dispatcher is not None:
            raise RuntimeError("the inference worker is already started")
        self._pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="inference")
        self._last_finished = self._clock()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="inference-dispatcher")

    async def close(self, timeout: float = 5.0) -> None:
        """Stop taking work; run what was admitted until ``timeout``, then stop the rest.

        While closing, explanations run one after the other rather than in turns, so that as
        many as possible finish in time. At the deadline, explanations in progress stop between
        slices and everything left fails with ``WorkerStopped``; ``close`` then waits up to
        ``STOP_WAIT_S`` for the batch or slice a thread is running, so no inference outlives it
        by more than one slice.
        """
        if self._closing:
            return
        self._closing = True
        self._work.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            if self._dispatcher is not None:
                # The dispatcher returns once every admitted request has been handed to a thread.
                await asyncio.wait([self._dispatcher], timeout=timeout)
            if self._busy:
                await asyncio.wait(list(self._busy), timeout=max(0.0, deadline - loop.time()))
        finally:
            if self._dispatcher is not None:
                self._dispatcher.cancel()
            self._stop()
            if self._busy:
                await asyncio.wait(list(self._busy), timeout=STOP_WAIT_S)
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)

    def _stop(self) -> None:
        """Fail everything not finished and stop the explanations waiting for a slice."""
        unfinished = [request for requests in self._predictions.values() for request in requests]
        unfinished += self._explanations
        unfinished += [request for _, requests in self._busy.values() for request in requests]
        unfinished = [request for request in unfinished if not request.future.done()]
        for request in unfinished:
            self._fail(request, WorkerStopped("the inference worker shut down before this request finished"))
        for queue in self._predictions.values():
            queue.clear()
        self._drop_ended()  # closes the explanations between slices; running ones close on return
        self._update_depth()
        if unfinished:
            logger.warning("inference worker closed with %d requests unfinished", len(unfinished))

    # --- requests -------------------------------------------------------------------------

    async def predict(self, text: str, priority: Priority = Priority.REACTION) -> np.ndarray:
        """The 64 emoji probabilities of ``text``, computed in a batch with other requests."""
        return cast(np.ndarray, await self._submit(PREDICT, text, Priority(priority)))

    async def explain(self, text: str) -> Explanation:
        """Which words made the model pick its emojis (``bot.explain.Explanation``), in slices."""
        return cast("Explanation", await self._submit(EXPLAIN, text, Priority.WHY))

    def depth(self) -> int:
        """Requests waiting (predictions not yet handed to the model, explanations not started)."""
        return len(self._waiting())

    def _waiting(self) -> list[_Request]:
        waiting = [request for queue in self._predictions.values() for request in queue]
        waiting += [request for request in self._turns if not request.started]
        return [request for request in waiting if not request.future.done()]

    def status(self) -> WorkerStatus:
        """Queue depth, the oldest wait, and how long the model has been busy or idle."""
        now = self._clock()
        waiting = self._waiting()
        busy_since = min((started for started, _ in self._busy.values()), default=None)
        last_finished = self._last_finished if busy_since is None else None
        return WorkerStatus(
            queued=len(waiting),
            oldest_wait_s=now - min(request.queued_at for request in waiting) if waiting else None,
            busy_for_s=None if busy_since is None else now - busy_since,
            idle_for_s=None if last_finished is None else now - last_finished,
            running=self._is_running(),
        )

    def _is_running(self) -> bool:
        return self._dispatcher is not None and not self._closing and not self._dispatcher.done()

    async def _submit(self, kind: RequestKind, text: str, priority: Priority) -> object:
        if not self._is_running():
            state = "not started" if self._dispatcher is None else "shutting down" if self._closing else "broken"
            self._refuse(kind, WorkerStopped(f"the inference worker is {state}"))
        self._drop_ended()
        if kind == EXPLAIN and len(self._explanations) >= self.max_explanations:
            self._refuse(kind, Overloaded("too many explanations are running; try again in a moment"))
        if kind == PREDICT and self._waiting_predictions() >= self.queue_size:
            self._make_room(priority)
        request = _Request(kind, text, priority, asyncio.get_running_loop().create_future(), self._clock())
        request.future.add_done_callback(partial(self._ended, request))
        if kind == EXPLAIN:
            self._explanations.add(request)
            self._turns.append(request)
        else:
            self._predictions[priority].append(request)
        self._update_depth()
        self._work.set()
        return await request.future

    def _make_room(self, priority: Priority) -> None:
        """Predictions are full: refuse a reaction, or evict the oldest reaction for a /why."""
        if priority is Priority.REACTION:
            error = Overloaded("too many messages are waiting for the model; this one was skipped")
            self._refuse(PREDICT, error)
        reactions = self._predictions[Priority.REACTION]
        if not reactions:
            error = Overloaded("too many /why requests are waiting; try again in a moment")
            self._refuse(PREDICT, error)
        self._fail(reactions.popleft(), Overloaded("dropped to make room for a /why request"))

    # --- accounting -----------------------------------------------------------------------

    def _ended(self, request: _Request, future: asyncio.Future) -> None:
        """Every admitted request passes here exactly once, however it ended."""
        if future.cancelled():
            self._count(request.kind, Outcome.ABANDONED)
        else:
            error = future.exception()
            self._count(request.kind, Outcome.DONE if error is None else failure_reason(error), error)

    def _refuse(self, kind: RequestKind, error: WhymojiError) -> NoReturn:
        """Count a request refused at the door, then raise its error."""
        self._count(kind, failure_reason(error), error)
        raise error

    def _count(self, kind: RequestKind, outcome: Outcome, error: BaseException | None = None) -> None:
        """The worker's ledger."""
        self.metrics.worker_requests.labels(kind=kind, outcome=outcome).inc()
        if outcome is Outcome.OVERLOAD:
            self._log.log(f"overload:{kind}", logging.WARNING, "inference worker full: refusing %s requests", kind)
        elif outcome is Outcome.MODEL_ERROR:
            cause = error.__cause__ if error is not None else None
            name = type(cause).__name__
            message = "the model failed on a %s request: %s: %s"
            self._log.log(f"model_error:{kind}:{name}", logging.ERROR, message, kind, name, cause)

    def _fail(self, request: _Request, error: BaseException) -> None:
        if not request.future.done():
            request.future.set_exception(error)

    def _settle(self, request: _Request, outcome: object) -> None:
        """Hand a finished request its result or error (unless it already ended)."""
        if request.future.done():
            return
        self.metrics.inference_seconds.labels(kind=request.kind).observe(self._clock() - request.queued_at)
        if isinstance(outcome, BaseException):
            self._fail(request, outcome)
        else:
            request.future.set_result(outcome)

    def _update_depth(self) -> None:
        self.metrics.queue_depth.set(self.depth())

    # --- dispatching ----------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Hand work to the pool whenever a thread is free; gather batches while waiting."""
        try:
            while True:
                await self._slots.acquire()
                unit = await self._next_unit()
                if unit is None:
                    self._slots.release()
                    return
                self._launch(unit)
        except Exception:
            logger.exception("inference dispatcher failed; failing every request")
            self._stop()
            raise

    def _launch(self, unit: _Request | list[_Request]) -> None:
        if isinstance(unit, _Request):
            task = asyncio.create_task(self._run_slice(unit))
            requests = [unit]
        else:
            task = asyncio.create_task(self._run_batch(unit))
            requests = unit
        self._busy[task] = (self._clock(), requests)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        started, requests = self._busy.pop(task)
        self._last_finished = self._clock()
        self._time_used[requests[0].kind] += self._last_finished - started
        self._slots.release()
        self._work.set()
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                logger.error("inference run failed", exc_info=task.exception())
            for request in requests:
                self._fail(request, WorkerStopped("the inference worker stopped while this request ran"))
            self._drop_ended()

    async def _next_unit(self) -> _Request | list[_Request] | None:
        """The next unit of work: one explanation's slice, or up to ``max_batch`` predictions.

        Returns ``None`` once the worker is closing and every admitted request was handed out.
        """
        while True:
            while not self._has_work():
                if self._closing and not self._explanations:
                    return None
                self._work.clear()
                await self._work.wait()
            if self._next_turn() is None and not self._closing:
                await self._gather_batch_mates()
            if (unit := self._take()) is not None:
                return unit

    async def _gather_batch_mates(self) -> None:
        """Wait up to ``max_wait_ms`` for more predictions, unless a batch is full or a slice waits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while self._waiting_predictions() < self.max_batch and self._next_turn() is None and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._work.clear()
            try:
                await asyncio.wait_for(self._work.wait(), remaining)
            except TimeoutError:
                return

    def _has_work(self) -> bool:
        self._drop_ended()
        return self._next_turn() is not None or self._waiting_predictions() > 0

    def _waiting_predictions(self) -> int:
        return sum(1 for queue in self._predictions.values() for request in queue if not request.future.done())

    def _drop_ended(self) -> None:
        """Forget requests that already ended (caller gone, evicted, stopped); stop their slices."""
        for queue in self._predictions.values():
            while queue and queue[0].future.done():
                queue.popleft()
        for request in [request for request in self._explanations if request.future.done()]:
            if request in self._turns:
                self._turns.remove(request)
            elif any(request in requests for _, requests in self._busy.values()):
                continue  # a thread is running its slice: it stops when the slice returns
            self._end_explanation(request)

    def _end_explanation(self, request: _Request) -> None:
        """Forget an explanation; between slices its generator is closed (its cleanup runs, never
        another slice). A slice still on a thread after its run was cancelled (the event loop
        shutting down) ends by itself, and the generator is closed when it is collected."""
        self._explanations.discard(request)
        if request.steps is not None and inspect.getgeneratorstate(request.steps) != inspect.GEN_RUNNING:
            request.steps.close()
        request.steps = None

    def _next_turn(self) -> _Request | None:
        """The explanation whose turn it is: the first in turn order that is in progress, or that
        may start (fewer than ``explanations_in_progress`` are; each holds its state meanwhile)."""
        in_progress = sum(1 for request in self._explanations if request.started)
        may_start = in_progress < self.explanations_in_progress
        return next((request for request in self._turns if request.started or may_start), None)

    def _take(self) -> _Request | list[_Request] | None:
        """A slice of the explanation whose turn it is, or a batch of predictions.

        While both wait, explanations get at most ``EXPLANATION_SHARE`` of the model's time,
        measured since both began waiting, whatever their slices cost: a batch goes first, then
        a slice, then batches until the slices' share is down again, and so on.
        """
        waiting = self._waiting_predictions() > 0
        if not (waiting and self._explanations):
            self._time_used = {PREDICT: 0.0, EXPLAIN: 0.0}
        explained, predicted = self._time_used[EXPLAIN], self._time_used[PREDICT]
        turn = self._next_turn()
        if turn is not None and (not waiting or explained * (1 - EXPLANATION_SHARE) < predicted * EXPLANATION_SHARE):
            self._turns.remove(turn)
            turn.started = True
            self._update_depth()
            return turn
        if not waiting:
            return None
        batch: list[_Request] = []
        for queue in self._predictions.values():
            while queue and len(batch) < self.max_batch:
                request = queue.popleft()
                if not request.future.done():
                    batch.append(request)
        self._update_depth()
        return batch

    # --- running --------------------------------------------------------------------------

    async def _run_batch(self, batch: list[_Request]) -> None:
        self.metrics.batch_size.observe(len(batch))
        texts = [request.text for request in batch]
        try:
            job = partial(_predict_batch, self.engine, texts)
            outcomes = await asyncio.get_running_loop().run_in_executor(self._pool, job)
        except RuntimeError as error:  # the pool was shut down
            outcomes = [WorkerStopped(f"the inference worker shut down ({error})")] * len(batch)
        for request, outcome in zip(batch, outcomes, strict=True):
            self._settle(request, outcome)

    async def _run_slice(self, request: _Request) -> None:
        job = partial(_next_slice, self._explain_steps, self.engine, request)
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(self._pool, job)
        except RuntimeError as error:  # the pool was shut down
            outcome = WorkerStopped(f"the inference worker shut down ({error})")
        if outcome is _MORE and not request.future.done():
            if self._closing:
                self._turns.appendleft(request)  # finish this one first: see ``close``
            else:
                self._turns.append(request)
            return
        self._settle(request, outcome)
        self._end_explanation(request)


def failure_reason(error: BaseException) -> Outcome:
    """Why a worker request failed: ``OVERLOAD``, ``SHUTDOWN``, ``MODEL_ERROR``, or ``REFUSED``
    (the text itself, e.g. no tokens)."""
    failures = ((Overloaded, Outcome.OVERLOAD), (WorkerStopped, Outcome.SHUTDOWN), (ModelError, Outcome.MODEL_ERROR))
    for kind, outcome in failures:
        if isinstance(error, kind):
            return outcome
    return Outcome.REFUSED


def _failure(error: Exception) -> WhymojiError:
    """A text's own problem (``EmptyTextError``) as it is; anything else is the model failing."""
    if isinstance(error, WhymojiError):
        return error
    failure = ModelError(f"the model failed ({type(error).__name__})")
    failure.__cause__ = error
    return failure


def _next_slice(explain_steps: ExplainSteps, engine: Engine, request: _Request) -> object:
    """Runs in the pool: one slice of an explanation; ``_MORE``, its result, or its error."""
    try:
        if request.steps is None:
            request.steps = explain_steps(engine, request.text)
        next(request.steps)
        return _MORE
    except StopIteration as done:
        return done.value
    except Exception as error:
        return _failure(error)


def _predict_batch(engine: Engine, texts: Sequence[str]) -> list[np.ndarray | WhymojiError]:
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
            return [_failure(error)]
        logger.debug("batch of %d failed (%s); running its texts one by one", len(texts), type(error).__name__)
    outcomes: list[np.ndarray | WhymojiError] = []
    for text in texts:
        try:
            outcomes.append(np.array(engine.predict([text])[0], copy=True))
        except Exception as error:
            outcomes.append(_failure(error))
    return outcomes
