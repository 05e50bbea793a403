"""The inference worker: batching, priorities, shedding, error isolation, shutdown, no blocking.

Most tests use a fake engine (an object with ``predict(texts)``) whose rows say which text they
belong to, and which can be held at a gate so that requests pile up in the queue on purpose.
"""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from bot.metrics import Metrics
from bot.worker import InferenceWorker, Overloaded, Priority, WorkerStopped


class EmptyText(Exception):
    """What the fake engine raises for a text without words, like the real one."""


def row_for(text: str) -> np.ndarray:
    """A probability row that identifies its text: all mass on class len(text) % 64."""
    row = np.zeros(64, dtype=np.float32)
    row[len(text) % 64] = 1.0
    return row


class FakeEngine:
    """Records every call; ``gate`` (if given) holds calls until released; ``delay`` sleeps."""

    def __init__(self, *, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.delay = delay
        self.gate = gate
        self.started = threading.Event()
        self.finished = threading.Event()

    def predict(self, texts):
        self.calls.append(("predict", list(texts)))
        self._work()
        for text in texts:
            if not text.strip():
                raise EmptyText(f"{text!r} has no words")
        return np.stack([row_for(text) for text in texts])

    def _work(self) -> None:
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        self.finished.set()

    @property
    def predict_batches(self) -> list[list[str]]:
        return [texts for kind, texts in self.calls if kind == "predict"]


def fake_explain(engine: FakeEngine, text: str) -> str:
    engine.calls.append(("explain", [text]))
    engine._work()
    if text == "boom":
        raise ValueError("cannot explain this one")
    return f"why: {text}"


def shed_count(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("whymoji_reactions_shed_total", {"reason": "overload"}) or 0.0


@pytest.fixture
def gate():
    """A closed gate that is always opened at the end, so no pool thread outlives its test."""
    event = threading.Event()
    yield event
    event.set()


async def started_worker(engine, **options) -> InferenceWorker:
    worker = InferenceWorker(engine, explain=fake_explain, **options)
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
        "occupier", "why row", "why words", "reaction 0", "reaction 1", "reaction 2"
    ]
    assert engine.calls[2][0] == "explain"


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
        assert shed_count(metrics) == 1
        assert metrics.registry.get_sample_value("whymoji_queue_depth") == 3
        gate.set()
        await busy
        assert [len(row) for row in await asyncio.gather(*queued)] == [64, 64, 64]
    finally:
        await worker.close()


async def test_a_why_evicts_the_oldest_queued_reaction_and_runs_first(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, max_batch=4, max_wait_ms=0, queue_size=3, metrics=metrics)
    try:
        busy = await occupy(worker, engine)
        oldest, *others = [asyncio.create_task(worker.predict(f"r{n}")) for n in range(3)]
        await until(lambda: worker.depth() == 3)
        why = asyncio.create_task(worker.explain("please explain"))
        await until(oldest.done)
        with pytest.raises(Overloaded):
            oldest.result()
        assert worker.depth() == 3
        assert shed_count(metrics) == 1
        gate.set()
        assert await why == "why: please explain"
        await asyncio.gather(busy, *others)
    finally:
        await worker.close()
    assert engine.calls[1] == ("explain", ["please explain"])
    assert engine.calls[2] == ("predict", ["r1", "r2"])


async def test_a_queue_full_of_why_requests_refuses_another(gate):
    engine = FakeEngine(gate=gate)
    metrics = Metrics()
    worker = await started_worker(engine, queue_size=1, metrics=metrics)
    try:
        busy = await occupy(worker, engine)
        waiting = asyncio.create_task(worker.explain("first"))
        await until(lambda: worker.depth() == 1)
        with pytest.raises(Overloaded, match="/why"):
            await worker.explain("second")
        assert shed_count(metrics) == 0
        gate.set()
        await asyncio.gather(busy, waiting)
    finally:
        await worker.close()


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
    assert isinstance(results[0], ValueError)
    assert results[1] == "why: fine"
    np.testing.assert_array_equal(results[2], row_for("row"))


async def test_requests_before_start_and_after_close_are_refused():
    worker = InferenceWorker(FakeEngine(), explain=fake_explain)
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


async def test_close_timeout_fails_whatever_did_not_run(gate):
    engine = FakeEngine(gate=gate)
    worker = await started_worker(engine, max_wait_ms=0)
    busy = await occupy(worker, engine)
    queued = [asyncio.create_task(worker.predict(f"never {n}")) for n in range(3)]
    await until(lambda: worker.depth() == 3)
    await worker.close(timeout=0.05)
    for task in (busy, *queued):
        with pytest.raises(WorkerStopped):
            await task
    assert engine.predict_batches == [["occupier"]]


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
