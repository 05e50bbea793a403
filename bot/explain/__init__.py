"""Which words made DeepMoji pick its emojis: occlusion (exact) and attention scores.

``explain(engine, text)`` is what ``/why`` and ``whymoji why`` call; it explains the tokens the
model reads (``Engine.read``: at most ``model.max_tokens``). Occlusion scores every word exactly
up to ``EXACT_MAX_TOKENS`` tokens; that costs the square of the length, and the default
``max_tokens`` is chosen so that it stays within a second (benchmarks/README.md). Longer messages
(a raised ``max_tokens``) get exact scores for the words the reply can show
(``bot.explain.shown``): the others are estimated with a recompute window of
``LONG_MESSAGE_WINDOW`` tokens and checked to score lower, and the ``Explanation`` says so.
"""

from __future__ import annotations

import logging

from bot.deepmoji.emojis import Emoji, top_emojis
from bot.deepmoji.engine import DEFAULT_MAX_TOKENS, EmptyTextError, Engine, Reading
from bot.explain.attention import attention
from bot.explain.explanation import METHODS, Explanation, WordScore
from bot.explain.occlusion import every_variant_steps, occlusion, occlusion_and_probabilities
from bot.explain.shown import MessageScores, shown_steps
from bot.explain.steps import Steps, finish

__all__ = [
    "EXACT_MAX_TOKENS",
    "LONG_MESSAGE_WINDOW",
    "METHODS",
    "Explanation",
    "UnknownMethodError",
    "WordScore",
    "attention",
    "explain",
    "explain_steps",
    "finish",
    "occlusion",
    "occlusion_and_probabilities",
]

logger = logging.getLogger(__name__)

#: Longest message (in tokens) whose every word is scored exactly: the default ``max_tokens``,
#: chosen so that this stays within a second. Below ~50 tokens, estimating every word and scoring
#: the shown ones exactly saves nothing (benchmarks/README.md), so the cheaper path starts here.
EXACT_MAX_TOKENS = DEFAULT_MAX_TOKENS
#: Tokens recomputed on each side of a left-out word for the estimates of longer messages: the
#: cheapest of 8, 16 and 32 at 60-64 tokens (8 is too rough: its check scores most words exactly).
LONG_MESSAGE_WINDOW = 16
#: How many of the top emojis occlusion measures and the explanation shows.
TOP_EMOJIS = 5


class UnknownMethodError(ValueError):
    """An explanation method that does not exist (a programming or command-line error)."""


def explain(
    engine: Engine,
    text: str,
    method: str = "occlusion",
    *,
    exact_max_tokens: int = EXACT_MAX_TOKENS,
    window: int = LONG_MESSAGE_WINDOW,
) -> Explanation:
    """Score every token the model reads of ``text`` with ``method`` ("occlusion" or "attention").

    Raises ``EmptyTextError`` when the text has no tokens.
    """
    return finish(explain_steps(engine, text, method, exact_max_tokens=exact_max_tokens, window=window))


def explain_steps(
    engine: Engine,
    text: str,
    method: str = "occlusion",
    *,
    exact_max_tokens: int = EXACT_MAX_TOKENS,
    window: int = LONG_MESSAGE_WINDOW,
) -> Steps[Explanation]:
    """``explain`` in slices (``bot.explain.steps``): yields the fraction done between bounded
    parts of the work, returns the ``Explanation``. Checks run before the first slice; closing
    the generator between slices stops the work and leaves nothing behind."""
    if method not in METHODS:
        raise UnknownMethodError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    if window < 1:
        raise ValueError(f"window must be at least 1 token, got {window}")
    reading = engine.read(text)
    if not reading.tokens:
        raise EmptyTextError(0, 1)
    return _explanation_steps(engine, text, method, reading, exact_max_tokens, window)


def _explanation_steps(
    engine: Engine, text: str, method: str, reading: Reading, exact_max_tokens: int, window: int
) -> Steps[Explanation]:
    ids = reading.ids
    if method == "attention":
        message_scores = MessageScores.all_exact(attention(engine.model, ids), engine.model.predict([ids])[0])
    elif len(ids) <= exact_max_tokens:
        every = yield from every_variant_steps(engine.model, ids, TOP_EMOJIS)
        message_scores = MessageScores.all_exact(every.scores, every.message, every.without)
    else:
        message_scores = yield from shown_steps(engine.model, ids, TOP_EMOJIS, window=window)
    logger.debug(
        "explained %d tokens with %s (%d scores exact, checked: %s)",
        len(ids),
        method,
        message_scores.exact.sum(),
        message_scores.checked,
    )
    top = tuple(top_emojis(message_scores.probabilities, TOP_EMOJIS))
    return Explanation(
        text=text,
        words=tuple(
            WordScore(
                token.word,
                token.start,
                token.end,
                float(score),
                bool(exact),
                *_leave_one_out(index, top, message_scores),
            )
            for index, (token, score, exact) in enumerate(
                zip(reading.tokens, message_scores.scores, message_scores.exact)
            )
        ),
        top_emojis=top,
        method=method,
        window=None if message_scores.exact.all() else window,
        checked=message_scores.checked,
        reading=reading,
    )


def _leave_one_out(
    index: int, top: tuple[tuple[Emoji, float], ...], message_scores: MessageScores
) -> tuple[tuple[float, ...] | None, tuple[tuple[Emoji, float], ...] | None]:
    """Word ``index``'s effects on the ``top`` emojis (p_k - q_k) and the top emojis without it."""
    if message_scores.without is None:
        return None, None
    without = message_scores.without[index]
    effects = tuple(float(probability - without[emoji.index]) for emoji, probability in top)
    nothing_left = not without.any()  # a one-word message: no prediction without its only word
    return effects, () if nothing_left else tuple(top_emojis(without, TOP_EMOJIS))
