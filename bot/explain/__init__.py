"""Which words made DeepMoji pick its emojis: occlusion (exact, fast) and attention scores.

``explain(engine, text)`` is what ``/why`` and ``whymoji why`` call. Occlusion is exact up to
``EXACT_MAX_TOKENS`` tokens; longer messages (Discord allows ~400) use the recompute window
``LONG_MESSAGE_WINDOW`` so the answer stays within seconds, and the ``Explanation`` says so.
"""

from __future__ import annotations

import logging

from bot.deepmoji.engine import EmptyTextError, Engine
from bot.explain.attention import attention
from bot.explain.explanation import METHODS, Explanation, WordScore
from bot.explain.occlusion import occlusion, occlusion_and_probabilities, occlusion_steps
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
]

logger = logging.getLogger(__name__)

#: Longest message (in tokens) explained exactly; beyond it occlusion uses the window below.
EXACT_MAX_TOKENS = 128
#: Tokens recomputed on each side of a left-out word in long messages (see ``occlusion``).
LONG_MESSAGE_WINDOW = 32
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
    """Score every token of ``text`` with ``method`` ("occlusion" or "attention").

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
    parts of the work, returns the ``Explanation``. Checks run before the first slice."""
    if method not in METHODS:
        raise UnknownMethodError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    tokens = engine.tokenize(text)
    if not tokens:
        raise EmptyTextError(0, 1)
    return _explanation_steps(engine, text, method, tokens, exact_max_tokens, window)


def _explanation_steps(engine, text, method, tokens, exact_max_tokens, window) -> Steps[Explanation]:
    ids = [token.id for token in tokens]
    approximate = method == "occlusion" and len(ids) > exact_max_tokens and window < len(ids) - 1
    if method == "occlusion":
        scores, probabilities = yield from occlusion_steps(
            engine.model, ids, TOP_EMOJIS, window=window if approximate else None
        )
    else:
        scores, probabilities = attention(engine.model, ids), engine.model.predict([ids])[0]
    logger.debug("explained %d tokens with %s (approximate: %s)", len(ids), method, approximate)
    return Explanation(
        text=text,
        words=tuple(
            WordScore(token.word, token.start, token.end, float(score)) for token, score in zip(tokens, scores)
        ),
        top_emojis=tuple(engine.top(probabilities, TOP_EMOJIS)),
        method=method,
        approximate=approximate,
        window=window if approximate else None,
    )
