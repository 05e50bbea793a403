"""How far a long computation has got, drawn on a terminal for the person waiting.

The computation is a generator of slices (``bot.explain.steps``) that yields the fraction done.
Nothing is drawn for work that ends within ``PROGRESS_AFTER_S`` (most explanations) or when the
stream is not a terminal (pipes, files and logs get only the result); the line is erased at
the end, so the output that follows is the same either way.
"""

from __future__ import annotations

import time
from typing import TextIO, TypeVar

from bot.explain.steps import Steps, finish

Result = TypeVar("Result")

#: Work shorter than this shows no progress at all.
PROGRESS_AFTER_S = 1.0


def finish_with_progress(steps: Steps[Result], label: str, stream: TextIO) -> Result:
    """Run ``steps`` to the end, drawing ``label`` and the percentage done on ``stream``."""
    if not stream.isatty():
        return finish(steps)
    started = time.monotonic()
    drawn = ""
    try:
        while True:
            try:
                fraction = next(steps)
            except StopIteration as done:
                return done.value
            if time.monotonic() - started >= PROGRESS_AFTER_S:
                drawn = f"\r{label} {fraction:.0%}"
                stream.write(drawn)
                stream.flush()
    finally:
        if drawn:
            stream.write("\r" + " " * len(drawn) + "\r")
            stream.flush()
