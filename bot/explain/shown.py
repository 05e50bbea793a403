"""Exact scores for the words a reply shows, without scoring every word of a long message exactly.

Scoring all N words exactly costs about N (N - 1) variant positions (``bot.explain.occlusion``);
a reply shows at most three words (``bot.explain.highlight``). So:

1. every word gets an estimate: occlusion with a recompute window (``window`` tokens each side);
2. the best-estimated words get exact scores (with their mirrors ``N - 1 - i``, which cost little
   more and are words of any score: a sample of the estimates' errors beyond the best ones);
3. the check: every word still estimated must stay below what it would take to be shown
   (``highlight.bar_to_be_shown``) by a margin. An estimate's error grows with how far its
   states at the window's edges still were from the full message's (the *mismatch*,
   ``occlusion._edge_mismatch``), so the margin is the word's mismatch times ``SAFETY`` times
   the largest error per mismatch seen on the words scored both ways. Until the check holds,
   the best-estimated words that fail it get exact scores too, in growing batches.

The words shown are always exact: an estimate that reaches the shown list is scored exactly
before anything else. Only the check can give up, after ``max_exact`` exact words: the result
then says so (``checked`` false), and the reply says another word might score higher.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.deepmoji.model import DeepMoji
from bot.explain.highlight import bar_to_be_shown, highlighted_indices
from bot.explain.occlusion import DEFAULT_MAX_ROWS, Occlusion, full_pass_macs, scores_macs
from bot.explain.steps import Steps, Work, in_fractions

#: The check's margin, in multiples of the largest error per mismatch seen on exactly scored words.
SAFETY = 3.0
#: Added to the margin: float32 rounding, the same in estimates and exact scores.
NOISE = 1e-6
#: Words scored exactly first (before mirrors), then twice as many each round.
FIRST_EXACT = 4
#: Most words scored exactly before the check gives up: twice the estimates' work at the default
#: window of 16, whatever the length. Over 60-64-token corpus messages the check needed 6-24.
DEFAULT_MAX_EXACT = 64


@dataclass(frozen=True)
class MessageScores:
    """Every word's score, which are exact, and whether no estimated word could have been shown."""

    scores: np.ndarray  # [N] float64
    exact: np.ndarray  # [N] bool
    checked: bool
    probabilities: np.ndarray  # [C] float64, the message's prediction
    #: [N, C] float64: the prediction without each word (exact where ``exact`` is), or None
    #: for a method that does not leave words out (attention)
    without: np.ndarray | None = None

    @classmethod
    def all_exact(
        cls, scores: np.ndarray, probabilities: np.ndarray, without: np.ndarray | None = None
    ) -> MessageScores:
        return cls(scores, np.ones(len(scores), dtype=bool), True, probabilities, without)


def shown_steps(
    model: DeepMoji,
    ids: Sequence[int],
    top_k: int = 5,
    *,
    window: int,
    max_exact: int = DEFAULT_MAX_EXACT,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Steps[MessageScores]:
    """The scores in slices (``bot.explain.steps``). Argument errors are raised here, before the first slice."""
    if window < 1:
        raise ValueError(f"window must be at least 1 token, got {window}")
    message = Occlusion.steps(model, ids, top_k)
    first = min(len(ids), 2 * FIRST_EXACT)
    total = full_pass_macs(model, len(ids)) + scores_macs(model, len(ids), len(ids), window)
    total += scores_macs(model, len(ids), first, None)
    return in_fractions(_shown(message, window, max_exact, max_rows), total)


def _shown(message: Work[Occlusion], window: int, max_exact: int, max_rows: int) -> Work[MessageScores]:
    occluded = yield from message
    estimated = yield from occluded.scores(np.arange(occluded.length), window, max_rows)
    estimates, mismatch = estimated.scores, estimated.mismatch
    scores, exact = estimates.copy(), mismatch == 0  # a window that reached both ends is exact
    without = estimated.probabilities.copy()
    by_estimate = np.argsort(-estimates, kind="stable")
    batch, next_exact = FIRST_EXACT, by_estimate[~exact[by_estimate]][:FIRST_EXACT]
    while next_exact.size:
        exact_scores = yield from occluded.scores(next_exact, None, max_rows)
        scores[exact_scores.variants], exact[exact_scores.variants] = exact_scores.scores, True
        without[exact_scores.variants] = exact_scores.probabilities
        shown = highlighted_indices(scores)
        next_exact = np.array([index for index in shown if not exact[index]], dtype=np.int64)
        if next_exact.size:
            continue  # what is shown is exact first
        margin = SAFETY * _error_per_mismatch(scores, estimates, mismatch, exact) * mismatch + NOISE
        rivals = ~exact & (estimates + margin >= bar_to_be_shown(scores, shown))
        if not rivals.any():
            break
        if exact.sum() >= max_exact:
            return MessageScores(scores, exact, False, occluded.probabilities, without)
        batch *= 2
        next_exact = by_estimate[rivals[by_estimate]][:batch]
    return MessageScores(scores, exact, True, occluded.probabilities, without)


def _error_per_mismatch(scores: np.ndarray, estimates: np.ndarray, mismatch: np.ndarray, exact: np.ndarray) -> float:
    """The largest estimate error per unit of edge mismatch among the words scored both ways."""
    sample = exact & (mismatch > 0)
    if not sample.any():
        return np.inf
    return float((np.abs(scores[sample] - estimates[sample]) / mismatch[sample]).max())
