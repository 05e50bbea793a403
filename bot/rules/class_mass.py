"""The probability mass DeepMoji puts on a set of its 64 classes: the scores built on emojis.

DeepMoji has no "hostile" or "distressed" output, but some of its emojis were used on Twitter
almost only for one feeling. Summing the probabilities of those classes gives a score in
[0, 1] that rises exactly with the model's belief that one of them fits (``bot/hostility.py``,
``bot/distress.py`` say which classes and why).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.deepmoji.emojis import EMOJIS


def class_mass(probabilities: np.ndarray, classes: Sequence[int]) -> float:
    """Probability mass on ``classes``, clipped to [0, 1] against rounding.

    ``probabilities`` is one softmax row of 64 values; anything else (wrong shape, negative or
    non-finite values) is a programming error and raises ``ValueError``.
    """
    row = np.asarray(probabilities, dtype=np.float64)
    if row.shape != (len(EMOJIS),):
        raise ValueError(f"expected {len(EMOJIS)} probabilities, got shape {row.shape}")
    if not np.all(np.isfinite(row)) or np.any(row < 0):
        raise ValueError("probabilities must be finite and non-negative")
    return float(np.clip(row[list(classes)].sum(), 0.0, 1.0))
