"""MessagePredictions: one reading and one model run per message, shared by the features."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bot.serving.predictions import MessagePredictions
from bot.serving.worker import Overloaded
from tests.cog_fakes import FakeEngine, FakeWorker
from tests.conftest import Clock


def held_worker() -> tuple[FakeWorker, asyncio.Event]:
    """A worker whose predictions wait until the returned event is set."""
    worker = FakeWorker()
    release = asyncio.Event()
    original = worker.predict

    async def slow_predict(text):
        await release.wait()
        return await original(text)

    worker.predict = slow_predict
    return worker, release


async def test_concurrent_callers_share_one_prediction():
    worker, release = held_worker()
    predictions = MessagePredictions(worker, FakeEngine())
    first = asyncio.create_task(predictions.predict(1, "hello"))
    second = asyncio.create_task(predictions.predict(1, "hello"))
    await asyncio.sleep(0)
    release.set()
    a, b = await asyncio.gather(first, second)
    assert worker.predicted == ["hello"]
    assert np.array_equal(a, b)
    await predictions.predict(2, "other")
    assert worker.predicted == ["hello", "other"]


async def test_concurrent_callers_share_one_reading_kept_beside_the_prediction():
    engine = FakeEngine()
    read_texts = []
    engine.read = lambda text: read_texts.append(text) or FakeEngine.read(engine, text)
    predictions = MessagePredictions(FakeWorker(), engine)
    first, second = await asyncio.gather(predictions.read(1, "i love you"), predictions.read(1, "i love you"))
    assert read_texts == ["i love you"] and first is second
    assert (first.known, first.unknown) == (3, 0)
    await predictions.predict(1, "i love you")
    assert len(predictions) == 1  # one entry per message for both
    await predictions.read(2, "other")
    assert read_texts == ["i love you", "other"]


async def test_errors_reach_every_caller_and_entries_expire():
    clock = Clock()
    worker = FakeWorker()
    worker.error = RuntimeError("overloaded")
    predictions = MessagePredictions(worker, FakeEngine(), ttl_s=30.0, clock=clock)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await predictions.predict(1, "hi")
    assert worker.predicted == ["hi"]
    clock.now += 31
    worker.error = None
    await predictions.predict(2, "later")
    assert len(predictions) == 1  # message 1 expired
    await predictions.predict(1, "hi")
    assert worker.predicted == ["hi", "later", "hi"]


async def test_a_cancelled_caller_does_not_cancel_the_shared_run():
    worker, release = held_worker()
    predictions = MessagePredictions(worker, FakeEngine())
    impatient = asyncio.create_task(predictions.predict(1, "x"))
    patient = asyncio.create_task(predictions.predict(1, "x"))
    await asyncio.sleep(0)
    impatient.cancel()
    release.set()
    assert (await patient).shape == (64,)


def test_messages_in_flight_are_bounded_and_both_listeners_of_one_message_admitted():
    predictions = MessagePredictions(FakeWorker(), FakeEngine(), max_in_flight=2)
    first, second = predictions.handle(1), predictions.handle(2)
    with first, second:
        with predictions.handle(1):  # the other listener of a message under way
            assert predictions.in_flight() == 2
        with pytest.raises(Overloaded, match="too many messages"):
            predictions.handle(3)
    assert predictions.in_flight() == 0
    with predictions.handle(3):
        assert predictions.in_flight() == 1
    with pytest.raises(ValueError):
        MessagePredictions(FakeWorker(), FakeEngine(), max_in_flight=0)
