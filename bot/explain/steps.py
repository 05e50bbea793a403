"""Long computations as generators of slices, so one caller can interleave, stop and show them.

An explanation of a long message takes a while. Written as a generator that yields the fraction
done (0.0 to 1.0) between bounded slices of work and *returns* its result, the same code serves
the inference worker (which runs other requests between slices and stops a request by closing
the generator), the CLI (which shows progress) and plain callers (``finish``).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

Result = TypeVar("Result")

#: A computation in slices: yields the fraction done, returns the result.
Steps = Generator[float, None, Result]
#: A computation in slices that yields how much work (multiply-adds) it did since the last yield;
#: ``in_fractions`` turns it into ``Steps``.
Work = Generator[float, None, Result]


def finish(steps: Steps[Result]) -> Result:
    """Run every slice of ``steps`` and return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def in_fractions(work: Work[Result], total: float) -> Steps[Result]:
    """``work`` as ``Steps``: yields the fraction of ``total`` multiply-adds done,
    never decreasing and below 1 (estimates of the total may be short)."""
    done = fraction = 0.0
    while True:
        try:
            done += next(work)
        except StopIteration as finished:
            return finished.value
        fraction = max(fraction, min(done / total, 0.99))
        yield fraction
