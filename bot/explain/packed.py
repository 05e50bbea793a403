"""An ``Explanation`` packed into a few arrays, for keeping many in memory (``/why``'s menus).

As Python objects, an explanation of 40 words takes ~39 KB (each word's ``WordScore``, its
tuple of effects and its top five without it are a few dozen small objects); packed, the same
facts take ~6 KB plus the text. ``PackedExplanation.pack(explanation).unpack() == explanation``
exactly (the floats are kept as float64, the emojis as class indices into ``EMOJIS``), and
``nbytes`` is what the packed form holds, for a cache bounded by bytes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from bot.deepmoji.emojis import EMOJIS, Emoji
from bot.deepmoji.engine import Reading
from bot.deepmoji.tokenizer import Token
from bot.explain.explanation import Explanation, WordScore

#: What the packed object itself takes beyond its arrays and strings: the instance with its
#: slots and the tuple of counts (tests/explain/test_packed.py checks ``nbytes`` against what
#: tracemalloc sees allocated).
_OVERHEAD = 200


@dataclass(frozen=True, slots=True, eq=False)
class PackedExplanation:
    """The facts of one ``Explanation``; ``unpack()`` gives it back."""

    text: str
    method: str
    window: int | None
    checked: bool
    top: np.ndarray  # [K] int16 classes
    top_probabilities: np.ndarray  # [K] float64
    words: str  # the token words, one after the other
    word_ends: np.ndarray  # [N] int32: where each word ends in ``words``
    spans: np.ndarray  # [N, 2] int32
    scores: np.ndarray  # [N] float64
    exact: np.ndarray  # [N] bool
    effects: np.ndarray | None  # [N, K] float64; None for attention
    without: np.ndarray | None  # [N, K'] int16 classes (K' = 0 for a one-word message)
    without_probabilities: np.ndarray | None  # [N, K'] float64
    ids: np.ndarray | None  # [N] int32 token ids, when the reading's tokens are the words
    counts: tuple[int, int, int] | None  # the reading's total, known, unknown
    reading: Reading | None  # a reading whose tokens are not the words (hand-built), kept as it is

    @classmethod
    def pack(cls, explanation: Explanation) -> PackedExplanation:
        words = explanation.words
        effects = [word.effects for word in words]
        withouts = [word.without_top for word in words]
        has_effects = bool(words) and all(effect is not None for effect in effects)
        has_without = bool(words) and all(without is not None for without in withouts)
        reading, ids, counts = explanation.reading, None, None
        if reading is not None and _aligned(reading, words):
            ids = np.array([token.id for token in reading.tokens], dtype=np.int32)
            counts, reading = (reading.total, reading.known, reading.unknown), None
        return cls(
            text=explanation.text,
            method=explanation.method,
            window=explanation.window,
            checked=explanation.checked,
            top=np.array([emoji.index for emoji, _ in explanation.top_emojis], dtype=np.int16),
            top_probabilities=np.array([p for _, p in explanation.top_emojis], dtype=np.float64),
            words="".join(word.word for word in words),
            word_ends=np.cumsum([len(word.word) for word in words], dtype=np.int32),
            spans=_matrix([(word.start, word.end) for word in words], 2, np.int32),
            scores=np.array([word.score for word in words], dtype=np.float64),
            exact=np.array([word.exact for word in words], dtype=bool),
            effects=_matrix(effects, len(explanation.top_emojis), np.float64) if has_effects else None,
            without=_classes(withouts) if has_without else None,
            without_probabilities=_probabilities(withouts) if has_without else None,
            ids=ids,
            counts=counts,
            reading=reading,
        )

    def unpack(self) -> Explanation:
        starts = [0, *self.word_ends[:-1].tolist()] if len(self.word_ends) else []
        texts = [self.words[start:end] for start, end in zip(starts, self.word_ends.tolist())]
        spans = self.spans.tolist()
        words = tuple(
            WordScore(
                word,
                start,
                end,
                score,
                exact,
                None if self.effects is None else tuple(self.effects[index].tolist()),
                self._without(index),
            )
            for index, (word, (start, end), score, exact) in enumerate(
                zip(texts, spans, self.scores.tolist(), self.exact.tolist())
            )
        )
        reading = self.reading
        if self.ids is not None and self.counts is not None:
            tokens = tuple(Token(w.word, token_id, w.start, w.end) for w, token_id in zip(words, self.ids.tolist()))
            reading = Reading(tokens, *self.counts)
        return Explanation(
            text=self.text,
            words=words,
            top_emojis=_emojis(self.top, self.top_probabilities),
            method=self.method,
            window=self.window,
            checked=self.checked,
            reading=reading,
        )

    def _without(self, index: int) -> tuple[tuple[Emoji, float], ...] | None:
        if self.without is None or self.without_probabilities is None:
            return None
        return _emojis(self.without[index], self.without_probabilities[index])

    @property
    def nbytes(self) -> int:
        """The memory this packed explanation holds (arrays, strings and the object itself)."""
        arrays = (
            self.top,
            self.top_probabilities,
            self.word_ends,
            self.spans,
            self.scores,
            self.exact,
            self.effects,
            self.without,
            self.without_probabilities,
            self.ids,
        )
        held = sum(sys.getsizeof(array) for array in arrays if array is not None)
        held += sys.getsizeof(self.text) + sys.getsizeof(self.words)
        if self.reading is not None:  # only hand-built explanations: a rough figure is enough
            held += sum(sys.getsizeof(token) + sys.getsizeof(token.word) for token in self.reading.tokens)
        return held + _OVERHEAD


def _aligned(reading: Reading, words: tuple[WordScore, ...]) -> bool:
    """Whether the reading's tokens are the words (as ``explain`` makes them): then only their ids are kept."""
    return len(reading.tokens) == len(words) and all(
        (token.word, token.start, token.end) == (word.word, word.start, word.end)
        for token, word in zip(reading.tokens, words)
    )


def _matrix(rows: list, width: int, dtype: type) -> np.ndarray:
    """Rows of ``width`` values as one array that owns its memory (not a view, so that
    ``sys.getsizeof`` counts it); a row of another width is a ``ValueError``."""
    matrix: np.ndarray = np.empty((len(rows), width), dtype=dtype)
    if rows:
        matrix[:] = rows
    return matrix


def _width(withouts: list[tuple[tuple[Emoji, float], ...] | None]) -> int:
    return max((len(without or ()) for without in withouts), default=0)


def _classes(withouts: list[tuple[tuple[Emoji, float], ...] | None]) -> np.ndarray:
    return _matrix([[emoji.index for emoji, _ in without or ()] for without in withouts], _width(withouts), np.int16)


def _probabilities(withouts: list[tuple[tuple[Emoji, float], ...] | None]) -> np.ndarray:
    return _matrix([[p for _, p in without or ()] for without in withouts], _width(withouts), np.float64)


def _emojis(classes: np.ndarray, probabilities: np.ndarray) -> tuple[tuple[Emoji, float], ...]:
    return tuple((EMOJIS[index], p) for index, p in zip(classes.tolist(), probabilities.tolist()))
