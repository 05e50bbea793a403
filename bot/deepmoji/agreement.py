"""How closely int8 follows fp32 on given weights and messages, and how much faster it is.

``model.precision = "int8"`` trades exactness for speed; how much it changes depends on the
weights and on the messages, so an operator measures it on their own (``whymoji agreement``)
instead of trusting figures from other weights.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.deepmoji.model import DeepMoji

#: Messages per model call, as the bot's worker batches them (``worker.max_batch``).
BATCH_SIZE = 32


@dataclass(frozen=True)
class Agreement:
    """int8 against fp32 on ``messages`` messages."""

    messages: int
    top_k: int
    same_top: int  #: messages whose most likely emoji is the same
    same_top_k: int  #: messages whose ``top_k`` most likely emojis are the same set
    max_difference: float  #: largest |int8 - fp32| of any probability
    median_difference: float  #: median over messages of each message's largest difference
    fp32_per_second: float
    int8_per_second: float

    @property
    def speedup(self) -> float:
        return self.int8_per_second / self.fp32_per_second


def top_sets(probabilities: np.ndarray, k: int) -> list[frozenset[int]]:
    return [frozenset(row) for row in np.argsort(-probabilities, axis=1, kind="stable")[:, :k]]


def measure_agreement(
    model: DeepMoji, batch: Sequence[Sequence[int]], *, top_k: int = 3, batch_size: int = BATCH_SIZE
) -> Agreement:
    """Run every message in both precisions, in calls of ``batch_size``, alternating call by call
    so that a busy machine slows both alike; the first call of each (building its session) is
    not timed."""
    if not batch:
        raise ValueError("no messages to compare")
    chunks = [batch[start : start + batch_size] for start in range(0, len(batch), batch_size)]
    results: dict[str, list[np.ndarray]] = {"fp32": [], "int8": []}
    seconds = {"fp32": 0.0, "int8": 0.0}
    for precision in results:
        model.predict(chunks[0][:1], precision=precision)
    for index, chunk in enumerate(chunks):
        for precision in ("fp32", "int8") if index % 2 == 0 else ("int8", "fp32"):
            started = time.perf_counter()
            results[precision].append(model.predict(chunk, precision=precision))
            seconds[precision] += time.perf_counter() - started
    fp32, int8 = (np.concatenate(results[precision]) for precision in ("fp32", "int8"))
    differences = np.abs(int8 - fp32).max(axis=1)
    return Agreement(
        messages=len(batch),
        top_k=top_k,
        same_top=int((fp32.argmax(axis=1) == int8.argmax(axis=1)).sum()),
        same_top_k=sum(a == b for a, b in zip(top_sets(fp32, top_k), top_sets(int8, top_k))),
        max_difference=float(differences.max()),
        median_difference=float(np.median(differences)),
        fp32_per_second=len(batch) / seconds["fp32"],
        int8_per_second=len(batch) / seconds["int8"],
    )
