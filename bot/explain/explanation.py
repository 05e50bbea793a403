"""What a ``/why`` answer is made of, independent of how the scores were computed or shown."""

from __future__ import annotations

from dataclasses import dataclass

from bot.deepmoji.emojis import Emoji
from bot.deepmoji.engine import Reading

#: The methods ``explain`` knows, with the one-line meaning shown to users.
METHODS = {
    "occlusion": "how much the top emojis' probability drops when the word is left out",
    "attention": "the model's attention weight on the word",
}

#: How exact the scores are (``Explanation.scoring``): every one; only the words that can be
#: shown, the others estimated and checked to stay below them; only the words shown, unchecked.
EXACT = "exact"
EXACT_SHOWN = "exact-shown"
EXACT_SHOWN_UNCHECKED = "exact-shown-unchecked"


@dataclass(frozen=True)
class WordScore:
    """One token: the word the model saw, where it sits in the original text, its influence.

    ``exact`` is false for an estimate (``bot.explain.shown``), which is never a word shown in bold.
    With occlusion, ``effects`` are the word's signed effects on each of the explanation's top
    emojis, in their order: that emoji's probability with the word minus without it (positive:
    the word raises it); ``score`` is their sum. ``without_top`` is the top five emojis of the
    message without the word (empty for a one-word message: nothing is left to predict). Both are
    None for attention, which leaves no word out.
    """

    word: str
    start: int
    end: int
    score: float
    exact: bool = True
    effects: tuple[float, ...] | None = None
    without_top: tuple[tuple[Emoji, float], ...] | None = None


@dataclass(frozen=True)
class Explanation:
    """The scores of every token the model read of ``text`` and the prediction they explain.

    ``window`` is the estimates' recompute window when some scores are estimates (a long
    message, ``bot.explain.shown``); ``checked`` says whether no estimated word could have been
    shown. ``reading`` is what the model read (``Engine.read``): whether the text was cut at
    ``max_tokens`` and how many of its words the model knows; ``None`` when not known.
    """

    text: str
    words: tuple[WordScore, ...]
    top_emojis: tuple[tuple[Emoji, float], ...]
    method: str
    window: int | None = None
    checked: bool = True
    reading: Reading | None = None

    @property
    def approximate(self) -> bool:
        """Whether any score is an estimate (never one shown in bold)."""
        return not all(word.exact for word in self.words)

    @property
    def scoring(self) -> str:
        """``EXACT``, ``EXACT_SHOWN`` or ``EXACT_SHOWN_UNCHECKED``."""
        if not self.approximate:
            return EXACT
        return EXACT_SHOWN if self.checked else EXACT_SHOWN_UNCHECKED

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form (the CLI's ``--json``). ``known_words`` is the share of known words,
        as ``whymoji predict --json`` writes it; ``reading`` has the counts behind it."""
        reading = self.reading
        return {
            "text": self.text,
            "method": self.method,
            "scoring": self.scoring,
            "approximate": self.approximate,
            "window": self.window,
            "known_words": None if reading is None else reading.known_share,
            "reading": None
            if reading is None
            else {
                "tokens": len(reading.tokens),
                "total_tokens": reading.total,
                "truncated": reading.truncated,
                "known": reading.known,
                "words": reading.word_count,
            },
            "top_emojis": [emoji.to_dict(p) for emoji, p in self.top_emojis],
            "words": [
                {
                    "word": word.word,
                    "text": self.text[word.start : word.end],  # what was typed: "!!!" is read as "!!"
                    "start": word.start,
                    "end": word.end,
                    "score": word.score,
                    "exact": word.exact,
                    "effects": None if word.effects is None else list(word.effects),
                    "without_top": None
                    if word.without_top is None
                    else [emoji.to_dict(p) for emoji, p in word.without_top],
                }
                for word in self.words
            ],
        }
