"""What the demo page shows, as plain data: no HTML, no Gradio, so tests can check it against ``explain``.

Everything here is read off one ``Explanation`` (``bot.explain.explain``, the code ``/why`` and
``whymoji why --json`` run) and, for the top-k list past the explanation's five emojis, the
message's 64 probabilities. Numbers are formatted by ``bot.explain.render``'s helpers, as
``/why`` prints them: scores to three decimals, probabilities as percentages with one decimal.

The *lens* picks which numbers shade the words: ``SCORE`` (each word's score, what ``/why``
ranks by: its signed effect summed over the top five emojis) or the rank (0-4) of one top emoji
(the word's signed effect on that emoji's probability, ``WordScore.effects[rank]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.deepmoji.emojis import Emoji, top_emojis
from bot.explain.explanation import Explanation, WordScore
from bot.explain.render import format_probability, format_score

#: The lens of the words' scores (all top emojis at once); a top emoji's rank is the other lens.
SCORE = -1
#: The top-k control's range, as the DeepMoji Space has it.
MIN_TOP_K, MAX_TOP_K = 1, 64
DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class ShadedWord:
    """One token the model read: where it is in the text, its number under the lens, its shade.

    ``shade`` is ``value / scale`` in [-1, 1] (0 when every value is 0): positive raises the
    emojis the lens looks at, negative lowers them. ``label`` is the number as printed.
    """

    index: int
    word: str
    start: int
    end: int
    value: float
    shade: float
    exact: bool

    @property
    def label(self) -> str:
        return format_score(self.value)


@dataclass(frozen=True)
class Shading:
    """Every read token's number under one lens, and the scale the shades are relative to."""

    lens: int
    title: str
    scale: float
    words: tuple[ShadedWord, ...]

    @property
    def scale_label(self) -> str:
        return format_score(self.scale).lstrip("+")


@dataclass(frozen=True)
class EmojiLine:
    """An emoji with its probability, and the word's signed effect on it where there is one."""

    emoji: Emoji
    probability: float
    effect: float | None = None

    @property
    def percent(self) -> str:
        return format_probability(self.probability)

    @property
    def effect_label(self) -> str:
        return "" if self.effect is None else format_score(self.effect)


@dataclass(frozen=True)
class WordView:
    """One picked word: its score, its effect on each top emoji, the top five without it.

    ``without`` is empty for a one-word message (nothing is left to predict) and None when the
    explanation leaves no word out (the attention method, which the page does not use).
    """

    index: int
    word: str
    start: int
    end: int
    score: float
    exact: bool
    effects: tuple[EmojiLine, ...] | None
    without: tuple[EmojiLine, ...] | None

    @property
    def score_label(self) -> str:
        return format_score(self.score)


@dataclass(frozen=True)
class ReadingView:
    """What the model read: how many of its words it knows, and where the ``max_tokens`` cut fell.

    ``cut_at`` is the character offset in the text after which the model read nothing (the end
    of the last token read), None when it read every token.
    """

    known: int
    words: int
    share: float
    read: int
    total: int
    cut_at: int | None

    @property
    def share_label(self) -> str:
        return format_probability(self.share)


def lens_title(explanation: Explanation, lens: int) -> str:
    """What the numbers mean under ``lens``, in words."""
    if lens == SCORE:
        return "score: how much the top emojis' probability drops when the word is left out"
    emoji, probability = explanation.top_emojis[lens]
    return f"effect on {emoji.reaction} {emoji.name} ({format_probability(probability)}): how much its probability drops when the word is left out"


def lenses(explanation: Explanation) -> list[int]:
    """The lenses this explanation supports: the score, and each top emoji when effects are known."""
    if not explanation.words or any(word.effects is None for word in explanation.words):
        return [SCORE]
    return [SCORE, *range(len(explanation.top_emojis))]


def value_of(word: WordScore, lens: int) -> float:
    if lens == SCORE:
        return word.score
    if word.effects is None:
        raise ValueError("this explanation has no per-emoji effects")
    return word.effects[lens]


def shading(explanation: Explanation, lens: int = SCORE) -> Shading:
    """Every word's number under ``lens`` and its shade relative to the largest in size.

    Raises ``ValueError`` for a lens the explanation does not support (``lenses``).
    """
    if lens not in lenses(explanation):
        raise ValueError(f"no lens {lens} for this explanation (choose from {lenses(explanation)})")
    values = [value_of(word, lens) for word in explanation.words]
    scale = max((abs(value) for value in values), default=0.0)
    words = tuple(
        ShadedWord(
            index=index,
            word=word.word,
            start=word.start,
            end=word.end,
            value=value,
            shade=value / scale if scale > 0 else 0.0,
            exact=word.exact,
        )
        for index, (word, value) in enumerate(zip(explanation.words, values))
    )
    return Shading(lens, lens_title(explanation, lens), scale, words)


def word_view(explanation: Explanation, index: int) -> WordView:
    """The picked word ``index`` (of ``explanation.words``): its effects and the top five without it."""
    word = explanation.words[index]
    effects = (
        None
        if word.effects is None
        else tuple(
            EmojiLine(emoji, probability, effect)
            for (emoji, probability), effect in zip(explanation.top_emojis, word.effects)
        )
    )
    without = (
        None
        if word.without_top is None
        else tuple(EmojiLine(emoji, probability) for emoji, probability in word.without_top)
    )
    return WordView(index, word.word, word.start, word.end, word.score, word.exact, effects, without)


def top_k(explanation: Explanation, probabilities: np.ndarray | None, k: int) -> tuple[EmojiLine, ...]:
    """The ``k`` most likely emojis: the explanation's own five first, exactly as it has them,
    then (``k`` > 5) the next ones from ``probabilities``, the message's 64."""
    if not MIN_TOP_K <= k <= MAX_TOP_K:
        raise ValueError(f"k must be from {MIN_TOP_K} to {MAX_TOP_K}, got {k}")
    lines = [EmojiLine(emoji, probability) for emoji, probability in explanation.top_emojis[:k]]
    if k > len(lines) and probabilities is not None:
        shown = {line.emoji.index for line in lines}
        rest = top_emojis(probabilities, k - len(lines), exclude=shown)
        lines += [EmojiLine(emoji, probability) for emoji, probability in rest]
    return tuple(lines)


def reading_view(explanation: Explanation) -> ReadingView | None:
    """The share of known words and the cut; None when the explanation does not say what was read."""
    reading = explanation.reading
    if reading is None:
        return None
    cut_at = reading.tokens[-1].end if reading.truncated and reading.tokens else None
    return ReadingView(
        known=reading.known,
        words=reading.word_count,
        share=reading.known_share,
        read=len(reading.tokens),
        total=reading.total,
        cut_at=cut_at,
    )
