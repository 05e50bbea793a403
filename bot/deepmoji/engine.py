"""The engine facade: text in, 64 emoji probabilities out, with the emojis they stand for.

Everything above the model (CLI, worker, explainer, cogs) talks to an ``Engine`` so that
tokenizing, batching and the class table are done one way everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.deepmoji.architecture import PRECISIONS
from bot.deepmoji.checkpoint import load_model
from bot.deepmoji.emojis import EMOJIS
from bot.deepmoji.files import ModelFiles
from bot.deepmoji.model import DeepMoji
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


#: Most tokens the model reads of one text; the rest is left out, as DeepMoji's own sentence
#: tokenizer cut texts at ``maxlen`` (30 in its emoji examples). It bounds the time and memory of
#: every request, whatever a user sends (a 4,000-character message can be 4,000 tokens).
#: ``model.max_tokens`` in the config. 40 is the longest round length whose ``/why`` scores every
#: word exactly within a second on one quiet thread of the 2-core machine we measure on: exact
#: leave-one-out costs the square of the length (``bot.explain.occlusion``), about 0.8 s at 40
#: and 1.2 s at 50 (benchmarks/README.md, "/why: exact scores within a second").
DEFAULT_MAX_TOKENS = 40


@dataclass(frozen=True)
class Reading:
    """What the model reads of a text: its first ``max_tokens`` tokens, and how much of that it knows.

    ``known`` counts vocabulary words, ``unknown`` the words the model never learned
    (``CUSTOM_UNKNOWN``: most non-English text and many emoji); mentions, URLs, numbers and line
    breaks are neither. ``known_share`` is the readability the reactions gate on and the CLI and
    ``/why`` report: known / (known + unknown), 0.0 when the text has no words at all.
    """

    tokens: tuple[Token, ...]
    total: int  #: tokens in the whole text; more than ``len(tokens)`` when it was cut
    known: int
    unknown: int

    @property
    def ids(self) -> list[int]:
        return [token.id for token in self.tokens]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.tokens)

    @property
    def word_count(self) -> int:
        """Known and unknown words: the ``M`` of "the model knows N of M words"."""
        return self.known + self.unknown

    @property
    def known_share(self) -> float:
        return self.known / self.word_count if self.word_count else 0.0


class ModelMismatchError(WhymojiError):
    """The vocabulary and the weights do not belong together (or the classes are not DeepMoji's)."""


class Engine:
    """A tokenizer and a DeepMoji model that agree on the vocabulary, plus the emoji table."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        model: DeepMoji,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        precision: str = "fp32",
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision != "fp32" and not model.uses_runtime():
            raise ValueError(f"precision {precision!r} needs ONNX Runtime, which runs on the CPU only")
        if model.num_classes != len(EMOJIS):
            raise ModelMismatchError(
                f"the model predicts {model.num_classes} classes, but DeepMoji has {len(EMOJIS)} emojis"
            )
        self.tokenizer = tokenizer
        self.model = model
        self.max_tokens = max_tokens
        #: What :meth:`predict` computes in; explanations (``/why``) always use fp32.
        self.precision = precision

    @classmethod
    def load(
        cls,
        files: ModelFiles,
        device: str = "cpu",
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        precision: str = "fp32",
    ) -> Engine:
        """Read the vocabulary and the weights; both must describe the same vocabulary.

        On a CPU the ONNX Runtime session is built here (about a second), so the first
        message is not the one that waits for it.
        """
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
        engine = cls(tokenizer, model, max_tokens=max_tokens, precision=precision)
        if model.uses_runtime():
            model.runtime(precision)
        logger.debug("engine ready: %d-token vocabulary on %s, %s", words, model.device, precision)
        return engine

    def read(self, text: str) -> Reading:
        """The tokens the model reads of ``text`` (at most ``max_tokens``) and how many it knows."""
        tokens = self.tokenizer.tokenize(text)
        read = tuple(tokens[: self.max_tokens])
        unknown = sum(1 for token in read if self.tokenizer.is_unknown(token.id))
        special = sum(1 for token in read if self.tokenizer.is_special(token.id))
        return Reading(read, total=len(tokens), known=len(read) - special, unknown=unknown)

    def tokenize(self, text: str) -> list[Token]:
        """The tokens the model reads of ``text``: the first ``max_tokens``."""
        return self.tokenizer.tokenize(text)[: self.max_tokens]

    def encode(self, text: str) -> list[int]:
        return [token.id for token in self.tokenize(text)]

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
        return self.model.predict(batch, precision=self.precision)  # no texts: an empty [0, 64] matrix
