"""``InferenceWorker.status()``, what /healthz reads of the worker: the contract's semantics.

A gated engine holds the model busy on purpose, so the state is known without timing anything:
busy while a batch runs, the rest waiting behind it, idle again once it finishes.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from bot.serving.worker import InferenceWorker


class GatedEngine:
    """``predict`` waits for ``gate`` (at most 10 s), so the test decides when the model is done."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()

    def predict(self, texts):
        self.started.set()
        self.gate.wait(10)
        return np.zeros((len(texts), 64), dtype=np.float32)


async def test_status_follows_the_worker_from_start_to_close():
    engine = GatedEngine()
    worker = InferenceWorker(engine, max_batch=1, max_wait_ms=0)
    try:
        await worker.start()
        idle = worker.status()
        assert (idle.running, idle.queued, idle.busy_for_s, idle.oldest_wait_s) == (True, 0, None, None)
        assert idle.idle_for_s is not None and idle.idle_for_s >= 0

        first = asyncio.ensure_future(worker.predict("first"))
        second = asyncio.ensure_future(worker.predict("second"))
        await asyncio.to_thread(engine.started.wait, 10)
        busy = worker.status()
        assert busy.busy_for_s is not None and busy.idle_for_s is None
        assert busy.queued == 1 and busy.oldest_wait_s is not None  # "second" waits behind "first"

        engine.gate.set()
        await asyncio.gather(first, second)
        done = worker.status()
        assert (done.queued, done.busy_for_s, done.oldest_wait_s) == (0, None, None)
        assert done.idle_for_s is not None
    finally:
        engine.gate.set()
        await worker.close(timeout=5)
    assert worker.status().running is False
