"""The demo page's answers, without Gradio: a text in, the page's HTML pieces out.

``explain_text(engine, text)`` runs ``bot.explain.explain`` (the code of ``/why`` and
``whymoji why``) on the text as typed and keeps, beside the ``Explanation``, the message's 64
probabilities when the top-k list goes past its five emojis. Every later view (another top-k, another
emoji lens, another picked word) is drawn from that ``Explained`` without running the model again.

Bad input gets a ``Notice`` (a sentence for the page), never an exception: an empty box, a text
with nothing the model reads, or more than ``MAX_TEXT_CHARS`` characters (the most Discord lets
a message or a ``/why`` text have; the page's box stops there too, so only other clients can
send more). Emoji-only and non-English text is explained like any other, with the reading
saying how little of it the model knows.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np

from bot.deepmoji.engine import EmptyTextError, Engine
from bot.demo import render
from bot.demo.view import (
    DEFAULT_TOP_K,
    MAX_TOP_K,
    MIN_TOP_K,
    SCORE,
    lenses,
    reading_view,
    shading,
    top_k,
    word_view,
)
from bot.explain import explain_steps
from bot.explain.explanation import Explanation
from bot.explain.steps import Steps, finish

log = logging.getLogger(__name__)

#: The longest text the page explains: Discord's longest message, and the most ``/why`` takes.
MAX_TEXT_CHARS = 4000

EMPTY = "Type a message above: every word the model reads is shaded by how much it moves the emojis."
NOTHING_TO_READ = "The model finds no words or symbols to read in this text."
TOO_LONG = (
    f"That is more than {MAX_TEXT_CHARS:,} characters, the most a Discord message (and /why) can have; "
    "please shorten it."
)


@dataclass(frozen=True)
class Explained:
    """A text's explanation, and its 64 probabilities (the same tokens, the fp32 model) once a
    top-k past the explanation's five emojis asked for them (``with_probabilities``)."""

    explanation: Explanation
    probabilities: np.ndarray | None


@dataclass(frozen=True)
class Notice:
    """Why there is no explanation for this text, in a sentence for the page."""

    message: str


def explain_text(engine: Engine, text: str, top_k: object = DEFAULT_TOP_K) -> Explained | Notice:
    """``explain`` on ``text`` as typed (the same text gives the same numbers as ``whymoji why``)."""
    return finish(explain_text_steps(engine, text, top_k))


def explain_text_steps(engine: Engine, text: str, top_k: object = DEFAULT_TOP_K) -> Steps[Explained | Notice]:
    """``explain_text`` in slices (``bot.explain.explain_steps``'s: closing it between two stops
    the work). The 64 probabilities are computed only for a ``top_k`` past the explanation's five."""
    if not text.strip():
        return Notice(EMPTY)
    if len(text) > MAX_TEXT_CHARS:
        return Notice(TOO_LONG)
    try:
        steps = explain_steps(engine, text)
    except EmptyTextError:
        return Notice(NOTHING_TO_READ)
    explanation = yield from steps
    log.debug("explained %d tokens for the demo page", len(explanation.words))
    return with_probabilities(engine, Explained(explanation, None), top_k)


def with_probabilities(engine: Engine, explained: Explained, top_k: object) -> Explained:
    """``explained`` with the message's 64 probabilities if ``top_k`` lists more emojis than the
    explanation has (one prediction of the tokens it read, fp32), else as it is."""
    reading = explained.explanation.reading
    if explained.probabilities is not None or reading is None:
        return explained
    if clamp_top_k(top_k) <= len(explained.explanation.top_emojis):
        return explained
    return replace(explained, probabilities=engine.model.predict([reading.ids], precision="fp32")[0])


@dataclass(frozen=True)
class Answer:
    """Everything the page shows for one text: HTML pieces, the lens and word choices."""

    words: str
    emojis: str
    word: str
    reading: str
    lens_choices: list[tuple[str, int]]
    lens: int
    word_choices: list[tuple[str, int]]
    pick: int | None


def clamp_top_k(k: object) -> int:
    """The top-k control's value as an int in 1..64 (a client may send anything)."""
    if isinstance(k, bool) or not isinstance(k, (int, float, str)):
        return DEFAULT_TOP_K
    try:
        value = float(k)
    except ValueError:
        return DEFAULT_TOP_K
    if not math.isfinite(value):
        return DEFAULT_TOP_K
    return min(max(round(value), MIN_TOP_K), MAX_TOP_K)


def valid_lens(explained: Explained | Notice | None, lens: object) -> int:
    """``lens`` if this explanation has it, else the score lens."""
    if not isinstance(explained, Explained) or not isinstance(lens, int):
        return SCORE
    return lens if lens in lenses(explained.explanation) else SCORE


def valid_pick(explained: Explained | Notice | None, pick: object) -> int | None:
    """``pick`` if it is one of this explanation's words, else None."""
    if not isinstance(explained, Explained) or not isinstance(pick, int) or isinstance(pick, bool):
        return None
    return pick if 0 <= pick < len(explained.explanation.words) else None


def words_html(explained: Explained | Notice | None, lens: object) -> str:
    if not isinstance(explained, Explained):
        return render.notice(explained.message if isinstance(explained, Notice) else EMPTY)
    explanation = explained.explanation
    return render.shaded_text(
        explanation.text, shading(explanation, valid_lens(explained, lens)), reading_view(explanation)
    )


def emojis_html(explained: Explained | Notice | None, k: object) -> str:
    if not isinstance(explained, Explained):
        return ""
    return render.emoji_list(top_k(explained.explanation, explained.probabilities, clamp_top_k(k)))


def word_html(explained: Explained | Notice | None, pick: object) -> str:
    index = valid_pick(explained, pick)
    if not isinstance(explained, Explained):
        return ""
    if index is None:
        return render.hint("Pick a word to see what it does to each emoji.")
    return render.word(explained.explanation.text, word_view(explained.explanation, index))


def reading_html(explained: Explained | Notice | None) -> str:
    if not isinstance(explained, Explained):
        return ""
    view = reading_view(explained.explanation)
    return "" if view is None else render.reading(explained.explanation.text, view)


def lens_choices(explained: Explained | Notice | None) -> list[tuple[str, int]]:
    """The emoji lens choices: "all five (score)", then each top emoji with its probability."""
    choices = [("score (all top emojis)", SCORE)]
    if isinstance(explained, Explained):
        explanation = explained.explanation
        for lens in lenses(explanation)[1:]:
            emoji, probability = explanation.top_emojis[lens]
            choices.append((f"{emoji.reaction} {render.plain_percent(probability)}", lens))
    return choices


def word_choices(explained: Explained | Notice | None) -> list[tuple[str, int]]:
    """One choice per word the model read, numbered, as written in the text."""
    if not isinstance(explained, Explained):
        return []
    explanation = explained.explanation
    return [
        (f"{index + 1}. {render.written(explanation.text, word.start, word.end)}", index)
        for index, word in enumerate(explanation.words)
    ]


def answer(explained: Explained | Notice, k: object, lens: object, pick: object) -> Answer:
    """The whole page for a new text; the lens and the picked word carry over where they still exist."""
    lens = valid_lens(explained, lens)
    index = valid_pick(explained, pick)
    return Answer(
        words=words_html(explained, lens),
        emojis=emojis_html(explained, k),
        word=word_html(explained, index),
        reading=reading_html(explained),
        lens_choices=lens_choices(explained),
        lens=lens,
        word_choices=word_choices(explained),
        pick=index,
    )
