"""The inference worker: batching, priorities, fair sharing, bounds, accounting, shutdown, status.

Most tests use a fake engine (an object with ``predict(texts)``) whose rows say which text they
belong to, and which can be held at a gate so that requests pile up in the queue on purpose.
Fake explanations are generators of slices like ``bot.explain.explain_steps``: each slice is
one engine call (recorded, held at the gate like a prediction), and their texts say how many
slices they take (``"long:50"``: 50 slices). The worker's clock is the engine's ``clock``, which
each call advances by its ``cost``, so how the worker shares model time is deterministic.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import numpy as np
import pytest

from bot.errors import WhymojiError
from bot.metrics import Metrics
from bot.serving.worker import InferenceWorker, ModelError, Overloaded, Priority, WorkerStatus, WorkerStopped


class EmptyText(WhymojiError):
    """What the fake engine raises for a text without words, like the real one."""


def row_for(text: str) -> np.ndarray:
    """A probability row that identifies its text: all mass on class len(text) % 64."""
    row = np.zeros(64, dtype=np.float32)
    row[len(text) % 64] = 1.0
    return row


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeEngine:
    """Records every call; ``gate`` (if given) holds calls until released; ``delay`` sleeps;
    each call advances ``clock`` by ``cost[kind]`` (model seconds).

    A text starting with ``crash`` makes the model itself fail (``failure``, a RuntimeError
    unless set), as a broken model or a full memory would.
    """

    def __init__(self, *, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.delay = delay
        self.gate = gate
        self.failure: BaseException = RuntimeError("the model broke")
        self.clock = FakeClock()
        self.cost = {"predict": 1.0, "explain": 1.0}
        self.started = threading.Event()
        self.finished = threading.Event()
        #: Explanations whose generator was closed before their last slice.
        self.stopped: list[str] = []

    def predict(self, texts):
        self.calls.append(("predict", list(texts)))
        self._work("predict")
        for text in texts:
            if not text.strip():
                raise EmptyText(f"{text!r} has no words")
            if text.startswith("crash"):
                raise self.failure
        return np.stack([row_for(text) for text in texts])

    def _work(self, kind: str) -> None:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        self.clock.now += self.cost[kind]
        self.finished.set()

    @property
    def predict_batches(self) -> list[list[str]]:
        return [texts for kind, texts in self.calls if kind == "predict"]

    def slices_of(self, text: str) -> int:
        return sum(1 for kind, texts in self.calls if kind == "explain" and texts == [text])


def fake_explain_steps(engine: FakeEngine, text: str):
    """Like ``explain_steps``: argument errors at creation, then a generator of slices."""
    if not text.strip():
        raise EmptyText(f"{text!r} has no words")
    return _fake_slices(engine, text)


def _fake_slices(engine: FakeEngine, text: str):
    slices = int(text.rsplit(":", 1)[1]) if ":" in text else 1
    try:
        for done in range(slices):
            engine.calls.append(("explain", [text]))
            engine._work("explain")
            if text == "boom":
                raise ValueError("cannot explain this one")
            if text.startswith("crash"):
                raise engine.failure
            if done < slices - 1:
                yield (done + 1) / slices
    except GeneratorExit:
        engine.stopped.append(text)
        raise
    return f"why: {text}"


def shed_count(metrics: Metrics, reason: str = "overload") -> float:
    return metrics.registry.get_sample_value("whymoji_reactions_shed_total", {"reason": reason}) or 0.0


def ended(metrics: Metrics, kind: str, outcome: str) -> float:
    labels = {"kind": kind, "outcome": outcome}
    return metrics.registry.get_sample_value("whymoji_worker_requests_total", labels) or 0.0


@pytest.fixture
def gate():
    """A closed gate that is always opened at the end, so no pool thread outlives its test."""
    event = threading.Event()
    yield event
    event.set()


async def started_worker(engine, **options) -> InferenceWorker:
    worker = InferenceWorker(engine, explain_steps=fake_explain_steps, clock=engine.clock, **options)
    await worker.start()
    return worker


async def until(condition) -> None:
    """Poll until ``condition()`` holds (pool threads may need a moment); gives up after ~10 s."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never became true")


async def occupy(worker: InferenceWorker, engine: FakeEngine) -> asyncio.Task:
    """Start one request and wait until the engine is busy with it (held at the gate)."""
    task = asyncio.create_task(worker.predict("occupier"))
    await asyncio.to_thread(engine.started.wait, 5)
    return task


async def test_concurrent_requests_are_gathered_into_few_bounded_batches():
    engine = FakeEngine()
    metrics = Metrics()
    worker = await started_worker(engine, max_batch=8, max_wait_ms=50, metrics=metrics)
    texts = ["x" * length for length in range(1, 41)]
    try:
        rows = await asyncio.gather(*(worker.predict(text) for text in texts))
    finally:
        await worker.close()
    for text, row in zip(texts, rows):
        np.testing.assert_array_equal(row, row_for(text))
    batches = engine.predict_batches
    assert sorted(text for batch in batches for text in batch) == sorted(texts)
    assert all(len(batch) <= 8 for batch in batches)
    assert len(batches) <= 10  # 40 requests, batches of up to 8: not one call per request
    assert metrics.registry.get_sample_value("whymoji_batch_size_sum") == 40
    assert metrics.registry.get_sample_value("whymoji_batch_size_count") == len(batches)
    assert metrics.registry.get_sample_value("whymoji_inference_seconds_count", {"kind": "predict"}) == 40
    assert metrics.registry.get_sample_value("whymoji_queue_depth") == 0


async def test_a_lone_request_runs_after_the_wait_without_mates():
    engine = FakeEngine()
    worker = await started_worker(engine, max_wait_ms=1)
    try:
        row = await worker.predict("hello")
    finally:
        await worker.close()
    np.testing.assert_array_equal(row, row_for("hello"))
    assert engine.calls == [("predict", ["hello"])]


async def test_why_requests_run_before_queued_reactions(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine, max_batch=1, max_wait_ms=0)
    try:
        busy = await occupy(worker, engine)
        reactions = [asyncio.create_task(worker.predict(f"reaction {n}")) for n in range(3)]
        why_predict = asyncio.create_task(worker.predict("why row", priority=Priority.WHY))
        why_explain = asyncio.create_task(worker.explain("why words"))
        await until(lambda: worker.depth() == 5)
        gate.set()
        await asyncio.gather(busy, why_predict, *reactions)
        assert await why_explain == "why: why words"
    finally:
        await worker.close()
    assert [texts[0] for _, texts in engine.calls] == [
        "occupier",
        "why words",
        "why row",
        "reaction 0",
        "reaction 1",
        "reaction 2",
    ]
    assert engine.calls[1][0] == "explain"


async def test_full_queue_sheds_reactions_and_never_grows(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, max_batch=4, max_wait_ms=0, queue_size=3, metrics=metrics)
    try:
        busy = await occupy(worker, engine)
        queued = [asyncio.create_task(worker.predict(f"r{n}")) for n in range(3)]
        await until(lambda: worker.depth() == 3)
        with pytest.raises(Overloaded):
            await worker.predict("one too many")
        assert worker.depth() == 3
        assert ended(metrics, "predict", "overload") == 1
        assert shed_count(metrics) == 0  # the reactions feature counts its own sheds
        assert metrics.registry.get_sample_value("whymoji_queue_depth") == 3
        gate.set()
        await busy
        assert [len(row) for row in await asyncio.gather(*queued)] == [64, 64, 64]
    finally:
        await worker.close()


async def test_a_why_prediction_evicts_the_oldest_queued_reaction_and_runs_first(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, max_batch=4, max_wait_ms=0, queue_size=3, metrics=metrics)
    try:
        busy = await occupy(worker, engine)
        oldest, *others = [asyncio.create_task(worker.predict(f"r{n}")) for n in range(3)]
        await until(lambda: worker.depth() == 3)
        why = asyncio.create_task(worker.predict("why row", priority=Priority.WHY))
        await until(oldest.done)
        with pytest.raises(Overloaded):
            oldest.result()
        assert worker.depth() == 3
        assert ended(metrics, "predict", "overload") == 1 and shed_count(metrics) == 0
        gate.set()
        np.testing.assert_array_equal(await why, row_for("why row"))
        await asyncio.gather(busy, *others)
    finally:
        await worker.close()
    assert engine.calls[1] == ("predict", ["why row", "r1", "r2"])


async def test_explanations_beyond_the_bound_are_refused_and_reactions_still_queue(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, max_explanations=2, metrics=metrics)
    try:
        busy = await occupy(worker, engine)
        admitted = [asyncio.create_task(worker.explain(f"why {n}:3")) for n in range(2)]
        await until(lambda: worker.depth() == 2)
        with pytest.raises(Overloaded, match="explanations"):
            await worker.explain("one too many")
        reaction = asyncio.create_task(worker.predict("still welcome"))
        await until(lambda: worker.depth() == 3)
        gate.set()
        assert await asyncio.gather(*admitted) == ["why: why 0:3", "why: why 1:3"]
        np.testing.assert_array_equal(await reaction, row_for("still welcome"))
        await busy
        # Once those ended, explanations are admitted again.
        assert await worker.explain("later") == "why: later"
    finally:
        await worker.close()
    assert ended(metrics, "explain", "overload") == 1
    assert ended(metrics, "explain", "done") == 3
    assert shed_count(metrics) == 0  # the worker never writes a feature's metric


async def test_several_threads_run_batches_side_by_side(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine, max_batch=1, max_wait_ms=0, threads=2)
    try:
        tasks = [asyncio.create_task(worker.predict(f"t{n}")) for n in range(3)]
        # Two calls are held at the gate at once; the third waits for a free thread.
        await until(lambda: len(engine.calls) == 2 and worker.depth() == 1)
        gate.set()
        await asyncio.gather(*tasks)
    finally:
        await worker.close()
    assert sorted(texts[0] for texts in engine.predict_batches) == ["t0", "t1", "t2"]


async def test_one_bad_text_fails_only_its_own_request(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine, max_batch=8, max_wait_ms=0)
    try:
        busy = await occupy(worker, engine)
        texts = ["good", "   ", "fine too"]
        tasks = [asyncio.create_task(worker.predict(text)) for text in texts]
        await until(lambda: worker.depth() == 3)
        gate.set()
        await busy
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await worker.close()
    np.testing.assert_array_equal(results[0], row_for("good"))
    assert isinstance(results[1], EmptyText)
    np.testing.assert_array_equal(results[2], row_for("fine too"))
    # The whole batch ran once, then each text alone to find the bad one.
    assert engine.predict_batches[1:] == [texts, ["good"], ["   "], ["fine too"]]


async def test_a_failed_explanation_fails_only_its_request():
    engine = FakeEngine()
    worker = await started_worker(engine)
    try:
        results = await asyncio.gather(
            worker.explain("boom"), worker.explain("fine"), worker.predict("row"), return_exceptions=True
        )
    finally:
        await worker.close()
    assert isinstance(results[0], ModelError)
    assert isinstance(results[0].__cause__, ValueError)
    assert results[1] == "why: fine"
    np.testing.assert_array_equal(results[2], row_for("row"))


async def test_requests_before_start_and_after_close_are_refused():
    worker = InferenceWorker(FakeEngine(), explain_steps=fake_explain_steps)
    with pytest.raises(WorkerStopped, match="not started"):
        await worker.predict("early")
    await worker.start()
    await worker.close()
    with pytest.raises(WorkerStopped, match="shutting down"):
        await worker.predict("late")
    with pytest.raises(WorkerStopped):
        await worker.explain("late")
    await worker.close()  # closing twice is harmless


async def test_close_finishes_queued_work(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine, max_batch=2, max_wait_ms=0)
    busy = await occupy(worker, engine)
    tasks = [asyncio.create_task(worker.predict("q" * n)) for n in range(1, 6)]
    await until(lambda: worker.depth() == 5)
    closing = asyncio.create_task(worker.close(timeout=10))
    await until(lambda: worker._closing)
    with pytest.raises(WorkerStopped):
        await worker.predict("while closing")
    gate.set()
    await closing
    await busy
    for n, row in enumerate(await asyncio.gather(*tasks), start=1):
        np.testing.assert_array_equal(row, row_for("q" * n))


async def test_close_timeout_fails_whatever_did_not_run_and_counts_it(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, max_wait_ms=0, metrics=metrics)
    busy = await occupy(worker, engine)
    queued = [asyncio.create_task(worker.predict(f"never {n}")) for n in range(3)]
    await until(lambda: worker.depth() == 3)
    closing = asyncio.create_task(worker.close(timeout=0.05))
    for task in (busy, *queued):
        with pytest.raises(WorkerStopped):
            await task
    gate.set()
    await closing
    assert engine.predict_batches == [["occupier"]]
    assert shed_count(metrics, "shutdown") == 0  # the reactions feature counts its own sheds
    assert ended(metrics, "predict", "shutdown") == 4


async def test_the_event_loop_keeps_running_while_the_model_works():
    engine = FakeEngine(delay=0.5)
    worker = await started_worker(engine)
    ticks_during_inference = 0

    async def heartbeat():
        nonlocal ticks_during_inference
        while not engine.finished.is_set():
            if engine.started.is_set():
                ticks_during_inference += 1
            await asyncio.sleep(0.01)

    try:
        beating = asyncio.create_task(heartbeat())
        await worker.predict("slow")
        await beating
    finally:
        await worker.close()
    # 0.5 s of model time at a 10 ms beat is ~50 ticks; a blocked loop would manage 0 or 1.
    assert ticks_during_inference >= 10


async def test_a_reaction_waits_for_one_slice_not_for_the_whole_explanation(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine, max_wait_ms=0)
    finished: list[str] = []
    try:
        explanation = asyncio.create_task(worker.explain("long:50"))
        explanation.add_done_callback(lambda _: finished.append("explanation"))
        await asyncio.to_thread(engine.started.wait, 5)  # its first slice is held at the gate
        reaction = asyncio.create_task(worker.predict("hello"))
        reaction.add_done_callback(lambda _: finished.append("reaction"))
        await until(lambda: worker.depth() == 1)
        gate.set()
        np.testing.assert_array_equal(await reaction, row_for("hello"))
        assert await explanation == "why: long:50"
    finally:
        await worker.close()
    assert finished == ["reaction", "explanation"]
    assert [kind for kind, _ in engine.calls[:3]] == ["explain", "predict", "explain"]
    assert engine.slices_of("long:50") == 50


async def test_while_reactions_wait_explanations_get_a_third_of_the_model_time_however_long_their_slices(gate):
    engine = FakeEngine(gate=gate)
    engine.cost = {"predict": 1.0, "explain": 3.0}  # slices three times a batch's time
    worker = await started_worker(engine, max_batch=1, max_wait_ms=0)
    try:
        busy = await occupy(worker, engine)
        explanation = asyncio.create_task(worker.explain("long:4"))
        reactions = [asyncio.create_task(worker.predict(f"r{n}")) for n in range(12)]
        await until(lambda: worker.depth() == 13)
        gate.set()
        await asyncio.gather(busy, explanation, *reactions)
    finally:
        await worker.close()
    order = "".join("S" if kind == "explain" else "R" for kind, _ in engine.calls[1:])
    # 3 model seconds per slice, then 6 of batches, while both wait; slices alone at the end.
    assert order == "S" + "R" * 6 + "S" + "R" * 6 + "SS"


async def test_by_default_one_explanation_is_under_way_at_a_time_the_next_starts_when_it_ends(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine, max_wait_ms=0)
    try:
        busy = await occupy(worker, engine)
        first = asyncio.create_task(worker.explain("first:3"))
        second = asyncio.create_task(worker.explain("second:2"))
        reaction = asyncio.create_task(worker.predict("meanwhile"))
        await until(lambda: worker.depth() == 3)
        gate.set()
        await asyncio.gather(busy, first, second, reaction)
    finally:
        await worker.close()
    slices = [texts[0] for kind, texts in engine.calls if kind == "explain"]
    assert slices == ["first:3"] * 3 + ["second:2"] * 2  # each holds its state only while under way


async def test_explanations_under_way_take_turns_so_a_short_one_is_not_stuck_behind_a_long_one(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine, explanations_in_progress=2)
    finished: list[str] = []
    try:
        busy = await occupy(worker, engine)
        long = asyncio.create_task(worker.explain("long:6"))
        long.add_done_callback(lambda _: finished.append("long"))
        await until(lambda: worker.depth() == 1)
        short = asyncio.create_task(worker.explain("short:2"))
        short.add_done_callback(lambda _: finished.append("short"))
        await until(lambda: worker.depth() == 2)
        gate.set()
        await asyncio.gather(busy, long, short)
    finally:
        await worker.close()
    assert finished == ["short", "long"]
    slices = [texts[0] for kind, texts in engine.calls if kind == "explain"]
    assert slices == ["long:6", "short:2", "long:6", "short:2", "long:6", "long:6", "long:6", "long:6"]


async def test_close_stops_a_running_explanation_between_slices_and_counts_what_it_drops(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, metrics=metrics)
    explanation = asyncio.create_task(worker.explain("long:1000"))
    await asyncio.to_thread(engine.started.wait, 5)  # slice 1 of 1000 is held at the gate
    not_started = asyncio.create_task(worker.explain("never started"))
    reaction = asyncio.create_task(worker.predict("queued reaction"))
    await until(lambda: worker.depth() == 2)
    closing = asyncio.create_task(worker.close(timeout=0))
    for task in (explanation, not_started, reaction):
        with pytest.raises(WorkerStopped):
            await task
    gate.set()  # the running slice returns; no other may start
    await closing
    assert engine.slices_of("long:1000") == 1
    assert engine.stopped == ["long:1000"]  # its generator was closed: cleanup ran
    assert engine.slices_of("never started") == 0 and engine.predict_batches == []
    assert ended(metrics, "explain", "shutdown") == 2
    assert ended(metrics, "predict", "shutdown") == 1
    assert shed_count(metrics, "shutdown") == 0


async def test_a_slice_still_on_its_thread_when_the_loop_cancels_its_run_is_left_alone(gate, monkeypatch):
    """A slice longer than close's wait, then the event loop ending (asyncio.run cancels every
    task): the generator is running on the pool thread and must not be closed from the loop."""
    monkeypatch.setattr("bot.serving.worker.STOP_WAIT_S", 0.0)
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine)
    explanation = asyncio.create_task(worker.explain("long:1000"))
    await asyncio.to_thread(engine.started.wait, 5)
    await worker.close(timeout=0)  # returns with slice 1 still held at the gate
    running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in running:
        task.cancel()
    await asyncio.wait(running)
    gate.set()
    await until(engine.finished.is_set)
    with pytest.raises(WorkerStopped):
        await explanation
    assert reported == []
    assert engine.slices_of("long:1000") == 1


async def test_close_lets_admitted_explanations_finish_one_after_the_other_within_the_grace_period(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine)
    first = asyncio.create_task(worker.explain("first:4"))
    await asyncio.to_thread(engine.started.wait, 5)  # its first slice is held at the gate
    second = asyncio.create_task(worker.explain("second:3"))
    await until(lambda: worker.depth() == 1)
    closing = asyncio.create_task(worker.close(timeout=30))
    await until(lambda: not worker.status().running)
    gate.set()
    await closing
    assert await asyncio.gather(first, second) == ["why: first:4", "why: second:3"]
    slices = [texts[0] for kind, texts in engine.calls if kind == "explain"]
    assert slices == ["first:4"] * 4 + ["second:3"] * 3  # not in turns: the sooner one ends, the more finish
    assert engine.stopped == []


async def test_an_explanation_whose_caller_gave_up_stops_after_its_current_slice(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, metrics=metrics)
    try:
        explanation = asyncio.create_task(worker.explain("long:1000"))
        await asyncio.to_thread(engine.started.wait, 5)
        explanation.cancel()
        gate.set()
        await until(lambda: engine.stopped == ["long:1000"])
        assert await worker.explain("next") == "why: next"  # its place in the bound is free again
    finally:
        await worker.close()
    assert engine.slices_of("long:1000") == 1
    assert ended(metrics, "explain", "abandoned") == 1


@pytest.mark.parametrize("failure", [RuntimeError("CUDA error: device lost"), MemoryError()])
async def test_model_failures_become_model_errors_counted_and_logged_once_per_kind(failure, caplog):
    engine = FakeEngine()
    engine.failure = failure
    metrics = Metrics()
    worker = await started_worker(engine, max_batch=8, metrics=metrics)
    try:
        with caplog.at_level(logging.DEBUG, logger="bot.serving.worker"):
            results = await asyncio.gather(
                *(worker.predict(f"crash {n}") for n in range(5)),
                worker.predict("fine"),
                worker.predict("   "),
                worker.explain("crash:3"),
                worker.explain("crash again:3"),
                return_exceptions=True,
            )
    finally:
        await worker.close()
    *crashed, fine, empty, explained, explained_again = results
    for error in (*crashed, explained, explained_again):
        assert isinstance(error, ModelError)
        assert error.__cause__ is failure
    np.testing.assert_array_equal(fine, row_for("fine"))
    assert isinstance(empty, EmptyText)  # the text's own problem stays what it is
    assert ended(metrics, "predict", "model_error") == 5
    assert ended(metrics, "explain", "model_error") == 2
    assert ended(metrics, "predict", "done") == 1
    assert ended(metrics, "predict", "refused") == 1
    assert shed_count(metrics, "model_error") == 0  # the cogs count what they see
    failures = [record for record in caplog.records if "model failed" in record.getMessage()]
    assert len(failures) == 2  # one line for predictions, one for explanations
    assert all(record.exc_info is None and "\n" not in record.getMessage() for record in failures)


async def test_every_request_ends_with_exactly_one_counted_outcome(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, max_wait_ms=0, queue_size=2, max_explanations=1, metrics=metrics)
    busy = await occupy(worker, engine)
    kept = asyncio.create_task(worker.predict("kept"))
    given_up = asyncio.create_task(worker.predict("given up"))
    await until(lambda: worker.depth() == 2)
    given_up.cancel()
    await until(lambda: worker.depth() == 1)
    kept_too = asyncio.create_task(worker.predict("kept too"))
    admitted = asyncio.create_task(worker.explain("admitted:2"))
    await until(lambda: worker.depth() == 3)
    with pytest.raises(Overloaded):
        await worker.predict("no room")
    with pytest.raises(Overloaded):
        await worker.explain("no room")
    gate.set()
    await asyncio.gather(busy, kept, kept_too, admitted)
    await worker.close()
    with pytest.raises(WorkerStopped):
        await worker.predict("too late")
    counted = {
        (sample.labels["kind"], sample.labels["outcome"]): sample.value
        for sample in metrics.worker_requests.collect()[0].samples
        if sample.name.endswith("_total")
    }
    assert counted == {
        ("predict", "done"): 3,  # occupier, kept, kept too
        ("predict", "abandoned"): 1,
        ("predict", "overload"): 1,
        ("predict", "shutdown"): 1,
        ("explain", "done"): 1,
        ("explain", "overload"): 1,
    }


async def test_status_reports_queue_age_and_how_long_the_model_is_busy_or_idle(gate):
    engine = FakeEngine(gate=gate)
    clock = FakeClock()
    worker = InferenceWorker(engine, max_wait_ms=0, explain_steps=fake_explain_steps, clock=clock)
    idle = WorkerStatus(queued=0, oldest_wait_s=None, busy_for_s=None, idle_for_s=None, running=False)
    assert worker.status() == idle
    await worker.start()
    try:
        clock.now += 3
        assert worker.status() == WorkerStatus(0, None, None, idle_for_s=3.0, running=True)
        busy = await occupy(worker, engine)  # on a thread since t=103
        clock.now += 2
        waiting = asyncio.create_task(worker.predict("waiting"))  # queued at t=105
        explanation = asyncio.create_task(worker.explain("later:2"))
        await until(lambda: worker.depth() == 2)
        clock.now += 4
        busy_status = WorkerStatus(queued=2, oldest_wait_s=4.0, busy_for_s=6.0, idle_for_s=None, running=True)
        assert worker.status() == busy_status
        gate.set()
        await asyncio.gather(busy, waiting, explanation)
        await until(lambda: worker.status().busy_for_s is None)
        clock.now += 1
        assert worker.status() == WorkerStatus(0, None, None, idle_for_s=1.0, running=True)
    finally:
        await worker.close()
    assert worker.status().running is False


@pytest.fixture
def small_engine(small_model_dir):
    from bot.deepmoji.engine import Engine
    from bot.deepmoji.files import ModelFiles

    return Engine.load(ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"))


async def test_batched_results_with_the_real_small_engine_equal_single_predictions(small_engine):
    texts = [
        "i love you so much !!",
        "what a stupid day",
        "lol",
        "thanks , that was really nice of you :)",
        "i hate mondays . why ?",
        "omg wow",
    ]
    worker = InferenceWorker(small_engine, max_batch=4, max_wait_ms=20)
    await worker.start()
    try:
        rows = await asyncio.gather(*(worker.predict(text) for text in texts))
    finally:
        await worker.close()
    for text, row in zip(texts, rows):
        assert row.shape == (64,)
        np.testing.assert_allclose(row, small_engine.predict([text])[0], rtol=1e-5, atol=1e-6)


async def test_explain_with_the_real_small_engine_matches_a_direct_call(small_engine):
    from bot.explain import explain

    worker = InferenceWorker(small_engine)
    await worker.start()
    try:
        explanation = await worker.explain("i love you so much !!")
    finally:
        await worker.close()
    assert explanation == explain(small_engine, "i love you so much !!")
