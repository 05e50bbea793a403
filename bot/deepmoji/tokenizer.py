"""DeepMoji's tokenizer for Python 3.11, with the Python 2 semantics its vocabulary was built with.

The published vocabulary (and the model's embeddings) came from the original DeepMoji code
running on Python 2. To give the model the words it learned, we reproduce that pipeline:

1. ``strip()`` and lower-case the text with Python 2's *simple* case mapping (``İ`` -> ``i``,
   ``Σ`` -> ``σ`` everywhere; Python 3 would give ``i̇`` and a final ``ς``). Whitespace is
   Python 2's too, which still counted U+180E.
2. Line breaks (``\\n``, ``\\r``, the escaped ``\\\\n``/``\\\\r`` forms, ``<br>``) become ``CUSTOM_BREAK``;
   then variation selectors (U+FE00-FE0F) are dropped.
3. Every whitespace-separated word that is not ASCII is NFKC-normalised, and each character
   whose ``unidecode`` is made only of ``!"#$'()+,-.:;<=>?@`~`` is replaced by it (smart quotes
   -> ``"``, ``…`` -> ``...``, ``—`` -> ``--``). Other characters (accents, emoji) stay.
4. DeepMoji's pattern splits the result into URLs, emails, ``a-b`` compounds, hashtags,
   mentions, hearts, emoticons, contractions, titles, abbreviations, numbers, ASCII words, runs
   of one symbol, and single characters, first alternative wins. The original wrote ``(?i)``
   in the middle of that pattern, which Python 2 applied to the whole pattern and Python 3.11
   refuses; we spell the few letters it affected in both cases instead. (Python 3's own
   IGNORECASE would also let ``ı`` and ``ſ`` into ``[a-z]``, which Python 2 did not.)
5. Each ASCII token has runs of 3+ identical characters cut to two, replacing run by run as
   the original's ``str.replace`` loop did (``sooo`` -> ``soo``, ``!!!!`` -> ``!!``). The published
   torchMoji port skips this on Python 3 by accident (``str`` has no ``.decode``), which feeds
   the model ``sooo`` and ``!!!`` it never saw; we do not. Then digit-only tokens become
   ``CUSTOM_NUMBER``, tokens holding ``@name`` ``CUSTOM_AT``, tokens holding a URL ``CUSTOM_URL``.

Quirks kept on purpose because the vocabulary depends on them: ``www.x.com`` is shortened to
``ww.x.com`` before the URL check and so stays a word; ``£`` is no symbol (the original's raw
string held ``\\xa3`` literally); accented letters split words (``café`` -> ``caf``, ``é``).
Unicode tables are Python 3.11's.

Spans: every step above is applied piecewise with a map back to the original text, so
``text[token.start:token.end]`` is what the user typed for that token (``sooo``, ``“``, the
``\\n``, the whole URL, ``❤️`` with its variation selector). Spans never overlap and increase.
When one typed character becomes several tokens (``½`` -> ``1``, ``⁄``, ``2``) the first token
gets the character and the others get an empty span at its end.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from text_unidecode import unidecode

from bot.errors import WhymojiError

logger = logging.getLogger(__name__)

UNKNOWN = "CUSTOM_UNKNOWN"
AT = "CUSTOM_AT"
URL = "CUSTOM_URL"
NUMBER = "CUSTOM_NUMBER"
BREAK = "CUSTOM_BREAK"
#: Special tokens the tokenizer emits; a vocabulary without them cannot be DeepMoji's.
REQUIRED_TOKENS = (UNKNOWN, AT, URL, NUMBER, BREAK)


class VocabularyError(WhymojiError):
    """The vocabulary is missing, unreadable or not a DeepMoji vocabulary."""


class Token(NamedTuple):
    """One word the model sees, its id, and the span ``[start, end)`` of the original text."""

    word: str
    id: int
    start: int
    end: int


# --- Python 2 text semantics ---------------------------------------------------------------

#: Python 2 lower-cased with the simple mapping: one character in, one out, no final sigma.
_PY2_CASE = {0x130: "i", 0x3A3: "\u03c3"}
#: Python 2's whitespace: Python 3's plus U+180E, a space separator in Unicode 5.2.
_SPACE = r"\s\u180e"
_WHITESPACE_CHARS = "".join(c for c in map(chr, range(0x3001)) if c.isspace()) + "\u180e"

_VARIATION_SELECTORS = "\ufe00-\ufe0f"
_VARIATION_SELECTOR = re.compile(f"[{_VARIATION_SELECTORS}]")
#: A run of characters with the variation selectors that follow it (they belong to it).
_RUN_AND_SELECTORS = re.compile(f"([^{_VARIATION_SELECTORS}]+)[{_VARIATION_SELECTORS}]*")

#: Line breaks in every form the training data had them, most escaped first.
_LINE_BREAK = re.compile(r"\\\\n|\\n|\n|\\\\r|\\r|\r|<br>")
_BREAK_TEXT = f" {BREAK} "

#: A word (maximal non-space run) with at least one non-ASCII character, found in one pass:
#: the ASCII prefix is taken possessively, so long ASCII words are not rescanned.
_UNICODE_WORD = re.compile(
    f"(?<![^{_SPACE}])[^{_SPACE}\\x80-\\U0010ffff]*+[^\\x00-\\x7f{_SPACE}][^{_SPACE}]*"
)

#: Punctuation DeepMoji accepts from ``unidecode`` in place of a Unicode character.
_ASCII_PUNCTUATION = frozenset("!\"#$'()+,-.:;<=>?@`~")


def _punctuation_table() -> dict[int, str]:
    """``str.translate`` table: character -> its ``unidecode`` where that is allowed punctuation.

    text_unidecode only knows the Basic Multilingual Plane. One call over all of it, the
    characters separated by NUL (which it maps to itself), keeps the import quick.
    """
    codepoints = range(0x80, 0x10000)
    decoded = unidecode("\x00".join(map(chr, codepoints))).split("\x00")
    if len(decoded) != len(codepoints):  # a table entry with a NUL: fall back to one at a time
        decoded = [unidecode(chr(codepoint)) for codepoint in codepoints]
    table = {}
    for codepoint, replacement in zip(codepoints, decoded):
        replacement = replacement.lower()
        if replacement and _ASCII_PUNCTUATION.issuperset(replacement):
            table[codepoint] = replacement
    return table


_PUNCTUATION = _punctuation_table()


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


# --- DeepMoji's token pattern ----------------------------------------------------------------

# Python 2 applied the original's inner ``(?i)`` to everything: letters in literals match both
# cases. ``[a-zA-Z]`` already does; nothing else in the lower-cased text needs it.
_URL_CHARS = r"[!\x24-\x5fa-zA-Z]"  # the original's class, incl. the $-_ range (digits, @, ...)
_URL = rf"(?:[hH][tT][tT][pP][sS]?://|[wW][wW][wW]\.){_URL_CHARS}+"
_EMAIL = r"\b[a-zA-Z0-9_.+\-]+@[a-zA-Z0-9\-]+\.[a-zA-Z0-9\-.]+\b"
_COMPOUND = r"[a-zA-Z]+[-_][a-zA-Z]+"
_HASHTAG = r"#[a-zA-Z0-9_]+"
_MENTION = r"@[a-zA-Z0-9_]+"
_HEART = r"(?:<+/?3+)+"
# An emoticon: one of a few fixed faces, or eyes, an optional nose, and a run of one mouth.
_EMOTICON = (
    r"-_-|[xX]_[xX]|\^_\^|[oO]\.[oO]|[oO]_[oO]|\(:|\):|\);|\(;"
    r"|(?:>:|[:=;])[-,^'\"]?(?:[dD]+|[pP]+|[vV]+|\)+|[oO]+|\(+|3+|/+|\|+|\\+)"
)
_CONTRACTION = r"[a-zA-Z]+'[a-zA-Z]+"
_TITLE = r"[mM][rR]\.|[mM][sS]\.|[mM][rR][sS]\.|[dD][rR]\.|[pP][rR][oO][fF]\."
_ABBREVIATION = r"\b(?<!\.)(?:[a-zA-Z]\.){2,}"
_NUMBER = r"[0-9]+"
_WORD = r"[a-zA-Z]+"
# A run of one symbol ('!!!' but not '!?'); # and @ leave the last one to a hashtag/mention.
_SYMBOL = r"""(?P<symbol>[()<!?.,/\\'"\-_=§|´ˇ°\[\]>{}~$^&*;:%+€`])(?P=symbol)*"""
_HASH_AT = r"#+(?=#[a-zA-Z0-9_])|@+(?=@[a-zA-Z0-9_])|#+|@+"

_TOKEN = re.compile(
    f"[{_SPACE}]+|("
    + "|".join(
        (
            _URL, _EMAIL, _COMPOUND, _HASHTAG, _MENTION, _HEART, _EMOTICON, _CONTRACTION,
            _TITLE, _ABBREVIATION, _NUMBER, _WORD, _SYMBOL, _HASH_AT, ".",
        )
    )
    + ")"
)

#: Special-token checks on a finished word; the original searched anywhere, case-sensitively.
_HAS_MENTION = re.compile(_MENTION)
_HAS_URL = re.compile(rf"(?:https?://|www\.){_URL_CHARS}")
_RUN_OF_THREE = re.compile(r"(.)\1{2,}", re.DOTALL)


def _shorten(word: str) -> str:
    """Cut runs of 3+ identical characters to 2 in an ASCII word, exactly as the original did.

    The original replaced each run's text everywhere, run after run, so a later run can be
    hit by an earlier, shorter one (``aaa-aaaaaa`` -> ``aa-aaaa``); we keep that.
    """
    if len(word) < 3 or not word.isascii():
        return word
    for run in [match.group() for match in _RUN_OF_THREE.finditer(word)]:
        word = word.replace(run, run[:2])
    return word


def _special(word: str) -> str:
    """The special token a (shortened) word stands for, else the word itself."""
    if word.isdecimal():  # what int() accepts from a token: it holds no sign or space
        return NUMBER
    if "@" in word and _HAS_MENTION.search(word):
        return AT
    if ("http" in word or "www." in word) and _HAS_URL.search(word):
        return URL
    return word


# --- The processed text and its map back to the original -------------------------------------


class _Sentence:
    """The text DeepMoji's pattern runs on, built from pieces that remember where they came from.

    An *identity* piece is original (lower-cased) text: offsets inside it map one to one, and
    its end may also cover variation selectors that were dropped after it. Any other piece (a
    normalised character cluster, a ``CUSTOM_BREAK``) maps as a whole to its original span.
    """

    __slots__ = ("_parts", "_length", "_starts", "_pieces")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._starts: list[int] = []
        self._pieces: list[tuple[int, int, int, int, bool]] = []

    def add(self, text: str, start: int, end: int, identity: bool) -> None:
        """Append ``text``, which stands for ``original[start:end]``."""
        if not text:
            return
        self._starts.append(self._length)
        self._pieces.append((self._length, self._length + len(text), start, end, identity))
        self._parts.append(text)
        self._length += len(text)

    def text(self) -> str:
        return "".join(self._parts)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of processed ``[start, end)`` (``end > start``)."""
        piece_start, _, original_start, original_end, identity = self._pieces[
            bisect_right(self._starts, start) - 1
        ]
        first = original_start + (start - piece_start) if identity else original_start
        piece_start, piece_end, original_start, original_end, identity = self._pieces[
            bisect_right(self._starts, end - 1) - 1
        ]
        last = original_start + (end - piece_start) if identity and end < piece_end else original_end
        return first, last


def _add_unicode_word(sentence: _Sentence, word: str, offset: int) -> None:
    """Append a non-ASCII word after DeepMoji's per-word NFKC and punctuation conversion."""
    plain = _VARIATION_SELECTOR.sub("", word)
    if unicodedata.is_normalized("NFKC", plain) and plain.translate(_PUNCTUATION) == plain:
        # Nothing changes but dropped selectors: keep the text, each selector joins its run.
        for run in _RUN_AND_SELECTORS.finditer(word):
            sentence.add(run.group(1), offset + run.start(), offset + run.end(), identity=True)
        return
    for text, start, end in _normalised_clusters(word):
        sentence.add(text.translate(_PUNCTUATION), offset + start, offset + end, identity=False)


def _normalised_clusters(word: str) -> list[tuple[str, int, int]]:
    """NFKC of ``word`` (selectors dropped) in pieces as small as normalisation allows.

    A cluster is a starter with its combining marks and selectors. NFKC of the whole word must
    equal the joined clusters' NFKC; where neighbours interact (Hangul jamo, two-part vowels)
    they are merged until it does.
    """
    clusters: list[list] = []
    for index, char in enumerate(word):
        if "\ufe00" <= char <= "\ufe0f":
            if clusters:
                clusters[-1][2] = index + 1
        elif clusters and unicodedata.combining(char):
            clusters[-1][0] += char
            clusters[-1][2] = index + 1
        else:
            clusters.append([char, index, index + 1])
    whole = _nfkc("".join(cluster[0] for cluster in clusters))
    pieces = [(_nfkc(text), start, end) for text, start, end in clusters]
    if "".join(piece[0] for piece in pieces) == whole:
        return pieces
    merged = [clusters[0]]
    for text, start, end in clusters[1:]:
        last = merged[-1]
        if _nfkc(last[0] + text) == _nfkc(last[0]) + _nfkc(text):
            merged.append([text, start, end])
        else:
            merged[-1] = [last[0] + text, last[1], end]
    pieces = [(_nfkc(text), start, end) for text, start, end in merged]
    if "".join(piece[0] for piece in pieces) == whole:
        return pieces
    return [(whole, clusters[0][1], clusters[-1][2])]


def _add_words(sentence: _Sentence, lowered: str, start: int, end: int) -> None:
    """Append ``lowered[start:end]`` (no line breaks inside), converting its non-ASCII words."""
    segment = lowered[start:end]
    if segment.isascii():
        sentence.add(segment, start, end, identity=True)
        return
    position = 0
    for word in _UNICODE_WORD.finditer(segment):
        sentence.add(segment[position : word.start()], start + position, start + word.start(), identity=True)
        _add_unicode_word(sentence, word.group(), start + word.start())
        position = word.end()
    sentence.add(segment[position:], start + position, end, identity=True)


def _sentence(text: str) -> _Sentence:
    """DeepMoji's text preparation (steps 1-3 of the module docstring), with the offset map."""
    lowered = text.translate(_PY2_CASE).lower()
    start = len(lowered) - len(lowered.lstrip(_WHITESPACE_CHARS))
    end = len(lowered.rstrip(_WHITESPACE_CHARS))
    sentence = _Sentence()
    for line_break in _LINE_BREAK.finditer(lowered, start, max(start, end)):
        _add_words(sentence, lowered, start, line_break.start())
        sentence.add(_BREAK_TEXT, line_break.start(), line_break.end(), identity=False)
        start = line_break.end()
    _add_words(sentence, lowered, start, max(start, end))
    return sentence


# --- The public tokenizer ---------------------------------------------------------------------


class Tokenizer:
    """DeepMoji's tokenization over a vocabulary: text -> ``Token``s with ids and original spans."""

    def __init__(self, vocabulary: Mapping[str, int], *, source: str = "the vocabulary") -> None:
        """``source`` names the vocabulary in error messages."""
        self._ids = _checked_vocabulary(vocabulary, source)
        self._unknown = self._ids[UNKNOWN]
        self.vocabulary: Mapping[str, int] = MappingProxyType(self._ids)

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        """Read torchMoji's ``vocabulary.json`` (an object of word -> id)."""
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise VocabularyError(f"vocabulary file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise VocabularyError(f"vocabulary file {path} cannot be read: {error}") from None
        try:
            vocabulary = json.loads(raw)
        except json.JSONDecodeError as error:
            raise VocabularyError(f"vocabulary file {path} is not valid JSON: {error}") from None
        tokenizer = cls(vocabulary, source=f"vocabulary file {path}")
        logger.debug("read %d-token vocabulary from %s", len(tokenizer.vocabulary), path)
        return tokenizer

    def tokenize(self, text: str) -> list[Token]:
        """The tokens of ``text`` in order; ``text[token.start:token.end]`` is what was typed."""
        if not isinstance(text, str):
            raise TypeError(f"tokenize() needs a str, got {type(text).__name__}")
        sentence = _sentence(text)
        ids, unknown = self._ids, self._unknown
        tokens: list[Token] = []
        previous_end = 0
        for match in _TOKEN.finditer(sentence.text()):
            raw = match.group(1)
            if raw is None:  # whitespace
                continue
            start, end = sentence.original_span(match.start(1), match.end(1))
            start = max(start, previous_end)  # a character that became several tokens
            end = previous_end = max(end, start)
            word = _special(_shorten(raw))
            tokens.append(Token(word, ids.get(word, unknown), start, end))
        return tokens

    def words(self, text: str) -> list[str]:
        return [token.word for token in self.tokenize(text)]

    def encode(self, text: str) -> list[int]:
        return [token.id for token in self.tokenize(text)]


def _checked_vocabulary(vocabulary: object, source: str) -> dict[str, int]:
    """A copy of ``vocabulary`` as a dict, or ``VocabularyError`` saying what is wrong with it."""
    if not isinstance(vocabulary, Mapping):
        raise VocabularyError(f"{source} must map words to ids, got {type(vocabulary).__name__}")
    checked: dict[str, int] = {}
    for word, index in vocabulary.items():
        if not isinstance(word, str) or not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise VocabularyError(f"{source}: entry {word!r}: {index!r} is not a word with an id >= 0")
        checked[word] = index
    missing = [token for token in REQUIRED_TOKENS if token not in checked]
    if missing:
        raise VocabularyError(f"{source} lacks DeepMoji's special tokens {', '.join(missing)}")
    return checked
