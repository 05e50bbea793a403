"""What a ``/why`` answer is made of, independent of how the scores were computed or shown."""

from __future__ import annotations

from dataclasses import dataclass

from bot.deepmoji.emojis import Emoji

#: The methods ``explain`` knows, with the one-line meaning shown to users.
METHODS = {
    "occlusion": "how much the top emojis' probability drops when the word is left out",
    "attention": "the model's attention weight on the word",
}


@dataclass(frozen=True)
class WordScore:
    """One token: the word the model saw, where it sits in the original text, its influence."""

    word: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Explanation:
    """The scores of every token of ``text`` and the prediction they explain.

    ``approximate`` is true when the scores were not computed exactly (occlusion on a long
    message with a recompute window); ``window`` then says how many tokens each side of a
    removed word were recomputed, so the reply can say so.
    """

    text: str
    words: tuple[WordScore, ...]
    top_emojis: tuple[tuple[Emoji, float], ...]
    method: str
    approximate: bool = False
    window: int | None = None

    def to_dict(self) -> dict:
        """A JSON-ready form (the CLI's ``--json``)."""
        return {
            "text": self.text,
            "method": self.method,
            "approximate": self.approximate,
            "window": self.window,
            "top_emojis": [emoji.to_dict(p) for emoji, p in self.top_emojis],
            "words": [
                {"word": w.word, "start": w.start, "end": w.end, "score": w.score} for w in self.words
            ],
        }
