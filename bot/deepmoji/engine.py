"""The engine facade: text in, 64 emoji probabilities out, with the emojis they stand for.

Everything above the model (CLI, worker, explainer, cogs) talks to an ``Engine`` so that
tokenizing, batching and the class table are done one way everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from bot.deepmoji.emojis import EMOJIS, Emoji
from bot.deepmoji.files import ModelFiles
from bot.deepmoji.model import DeepMoji, load_model
from bot.deepmoji.tokenizer import Token, Tokenizer
from bot.errors import WhymojiError

logger = logging.getLogger(__name__)


class EmptyTextError(WhymojiError):
    """A text has no tokens at all (empty or only spaces): there is nothing to read."""

    REASON = "there are no words or symbols for the model to read"

    def __init__(self, index: int, count: int) -> None:
        self.index = index
        where = "the text" if count == 1 else f"text {index + 1} of {count}"
        super().__init__(f"{where} is empty: {self.REASON}")


class ModelMismatchError(WhymojiError):
    """The vocabulary and the weights do not belong together (or the classes are not DeepMoji's)."""


class Engine:
    """A tokenizer and a DeepMoji model that agree on the vocabulary, plus the emoji table."""

    def __init__(self, tokenizer: Tokenizer, model: DeepMoji) -> None:
        if model.num_classes != len(EMOJIS):
            raise ModelMismatchError(
                f"the model predicts {model.num_classes} classes, but DeepMoji has {len(EMOJIS)} emojis"
            )
        self.tokenizer = tokenizer
        self.model = model

    @classmethod
    def load(cls, files: ModelFiles, device: str = "cpu") -> Engine:
        """Read the vocabulary and the weights; both must describe the same vocabulary."""
        tokenizer = Tokenizer.from_file(files.vocabulary)
        model = load_model(files.weights, device)
        words = len(tokenizer.vocabulary)
        highest = max(tokenizer.vocabulary.values())
        if words != model.vocab_size or highest >= model.vocab_size:
            raise ModelMismatchError(
                f"the vocabulary {files.vocabulary} has {words} tokens (highest id {highest}) but "
                f"the weights {files.weights} have {model.vocab_size} embedding rows: "
                "use files from the same model"
            )
        logger.debug("engine ready: %d-token vocabulary on %s", words, model.device)
        return cls(tokenizer, model)

    def tokenize(self, text: str) -> list[Token]:
        return self.tokenizer.tokenize(text)

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities [len(texts), 64], all texts in one model call.

        Raises ``EmptyTextError`` for the first text without tokens, before running the model.
        """
        if isinstance(texts, str):
            raise TypeError("predict() takes a sequence of texts; wrap a single text in a list")
        batch = [self.encode(text) for text in texts]
        for index, ids in enumerate(batch):
            if not ids:
                raise EmptyTextError(index, len(batch))
        return self.model.predict(batch)  # no texts: an empty [0, 64] matrix

    def top(
        self, probabilities: np.ndarray, k: int, threshold: float = 0.0
    ) -> list[tuple[Emoji, float]]:
        """The ``k`` most likely emojis of one row, most likely first, dropping those below
        ``threshold``; ties keep class order so results are reproducible."""
        row = np.asarray(probabilities, dtype=np.float64)
        if row.shape != (len(EMOJIS),):
            raise ValueError(f"expected one row of {len(EMOJIS)} probabilities, got shape {row.shape}")
        if not 1 <= k <= len(EMOJIS):
            raise ValueError(f"k must be from 1 to {len(EMOJIS)}, got {k}")
        order = np.argsort(-row, kind="stable")[:k]
        return [(EMOJIS[index], float(row[index])) for index in order if row[index] >= threshold]
