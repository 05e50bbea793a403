"""Which words a reply shows in bold, with their scores: the rule ``bot.explain.render`` applies and
``bot.explain.shown`` checks its estimates against (both must agree on it).

The three best-scoring tokens, each only if its score is at least ``HIGHLIGHT_MIN_SCORE`` and at
least a fifth of the best score, so a message with one clear driver shows one bold word and a
message where nothing matters shows none. Ties keep text order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

#: How many words may be bold, the share of the best score a bold word needs, and the score
#: below which nothing is "clear" (half a percentage point of the top emojis' probability, or
#: of attention).
HIGHLIGHT_COUNT = 3
HIGHLIGHT_MIN_SHARE = 0.2
HIGHLIGHT_MIN_SCORE = 0.005


def highlighted_indices(scores: Sequence[float] | np.ndarray) -> list[int]:
    """Indices of the words to show in bold, best first."""
    ranked = sorted(range(len(scores)), key=lambda index: scores[index], reverse=True)
    if not ranked:
        return []
    floor = _floor(scores[ranked[0]])
    return [index for index in ranked[:HIGHLIGHT_COUNT] if scores[index] >= floor]


def _floor(best: float) -> float:
    return max(HIGHLIGHT_MIN_SHARE * best, HIGHLIGHT_MIN_SCORE)


def bar_to_be_shown(scores: Sequence[float] | np.ndarray, shown: Sequence[int]) -> float:
    """A word outside ``shown`` (= ``highlighted_indices(scores)``) scoring below this could not
    change what is shown: the last bold word's score when all places are taken, else the floor."""
    if len(shown) == HIGHLIGHT_COUNT:
        return float(scores[shown[-1]])
    return _floor(max(scores))  # with nothing shown the best is under the floor: then it is the minimum
