"""DeepMoji's tokenizer for Python 3.11, with the Python 2 semantics its vocabulary was built with.

The published vocabulary (and the model's embeddings) came from the original DeepMoji code
running on Python 2. To give the model the words it learned, we reproduce that pipeline:

1. ``strip()`` and lower-case the text with Python 2's *simple* case mapping (``İ`` -> ``i``,
   ``Σ`` -> ``σ`` everywhere; Python 3 would give ``i̇`` and a final ``ς``). Whitespace is
   Python 2's too, which still counted U+180E.
2. Line breaks (``\\n``, ``\\r``, the escaped ``\\\\n``/``\\\\r`` forms, ``<br>``) become
   ``CUSTOM_BREAK``; then variation selectors (U+FE00-FE0F) are dropped.
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
When one typed character (or a letter with its marks) becomes several tokens (``½`` -> ``1``,
``⁄``, ``2``) the first token gets it and the others get an empty span at its end.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from itertools import repeat
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

#: Line breaks in every form the training data had them, most escaped first.
_LINE_BREAK = re.compile(r"\\\\n|\\n|\n|\\\\r|\\r|\r|<br>")
_BREAK_TEXT = f" {BREAK} "

_VARIATION_SELECTOR = re.compile("[\ufe00-\ufe0f]")
_WORD_RUN = re.compile(f"[^{_SPACE}]+")
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


def _one_of(codepoints: set[int]) -> str:
    """A regex matching one of ``codepoints``, quick for any character.

    ``re`` looks up a class's Basic Multilingual Plane part in a bitmap but scans the rest
    range by range, so the higher characters get their own class behind a guard of a few
    coarse ranges, which emoji fail at once.
    """
    low = "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in _ranges(c for c in codepoints if c <= 0xFFFF))
    high = [c for c in codepoints if c > 0xFFFF]
    alternatives = [f"[{low}]"] if low else []
    if high:
        exact = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _ranges(high))
        guard = "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _ranges(high, gap=0x400))
        alternatives.append(f"(?=[{guard}])[{exact}]")
    return f"(?:{'|'.join(alternatives) or '(?!)'})"


def _ranges(codepoints: Iterable[int], gap: int = 1) -> list[tuple[int, int]]:
    """Sorted ``codepoints`` as inclusive ranges, joining neighbours less than ``gap`` apart."""
    ranges: list[list[int]] = []
    for codepoint in sorted(codepoints):
        if ranges and codepoint - ranges[-1][1] <= gap:
            ranges[-1][1] = codepoint
        else:
            ranges.append([codepoint, codepoint])
    return [(first, last) for first, last in ranges]


def _cluster_pattern() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Patterns for the characters NFKC and the punctuation table may change, with context.

    *Marks* belong to the character before them: combining marks (they compose or reorder),
    variation selectors (dropped, but part of what was typed) and the few starters that compose
    with a previous one (Hangul vowel/final jamo, some Indic vowel parts). *Changing*
    characters are those NFKC or the table alter on their own. Everything else is kept as is.
    The tables only decide how finely spans map: every conversion is checked against NFKC of
    the whole text, so a Unicode version they miss cannot change the words.
    """
    candidates = [*range(0x80, 0x20000), *range(0x2F800, 0x2FA20)]  # plane 2: CJK compatibility
    marks = set(range(0xFE00, 0xFE10)) | set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    changing = set(_PUNCTUATION)
    for codepoint in candidates:
        char = chr(codepoint)
        if unicodedata.combining(char):
            marks.add(codepoint)
        if not unicodedata.is_normalized("NFKC", char):
            changing.add(codepoint)
        decomposition = unicodedata.decomposition(char).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            second = int(decomposition[1], 16)
            if not unicodedata.combining(chr(second)):
                marks.add(second)
    changing -= marks
    mark = _one_of(marks)
    converted = re.compile(f"[^{_SPACE}]?{mark}+|{_one_of(changing)}")
    clusters = re.compile(f".{mark}*", re.DOTALL)
    return converted, clusters


_CONVERTED, _CLUSTER = _cluster_pattern()


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
    # Whitespace separates tokens and is skipped; a token always follows (stripped text).
    f"[{_SPACE}]*+("
    + "|".join(
        (
            _URL,
            _EMAIL,
            _COMPOUND,
            _HASHTAG,
            _MENTION,
            _HEART,
            _EMOTICON,
            _CONTRACTION,
            _TITLE,
            _ABBREVIATION,
            _NUMBER,
            _WORD,
            _SYMBOL,
            _HASH_AT,
            ".",
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

    For each processed character it keeps the original span it stands for: an *identity* piece
    (text kept as typed) maps character to character; any other piece (a converted cluster, a
    ``CUSTOM_BREAK``) maps every one of its characters to its whole original span.
    """

    __slots__ = ("ends", "parts", "starts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, text: str, start: int, end: int, identity: bool) -> None:
        """Append ``text``, which stands for ``original[start:end]``."""
        if identity:
            self.starts.extend(range(start, end))
            self.ends.extend(range(start + 1, end + 1))
        else:
            self.starts.extend(repeat(start, len(text)))
            self.ends.extend(repeat(end, len(text)))
        self.parts.append(text)

    def text(self) -> str:
        return "".join(self.parts)


def _normal(text: str) -> str:
    """DeepMoji's normalisation of non-ASCII text: variation selectors dropped, then NFKC."""
    return unicodedata.normalize("NFKC", _VARIATION_SELECTOR.sub("", text))


#: Longest cluster whose normal form is remembered: a smart quote or an emoji with its selector
#: is a few characters; a character under hundreds of marks ("zalgo" text) rarely recurs.
_LONGEST_REMEMBERED_CLUSTER = 8

_normal_remembered = lru_cache(maxsize=4096)(_normal)


def _normal_cluster(cluster: str) -> str:
    """``_normal`` of one cluster, remembered when short, so the cache stays a few MB at most."""
    return _normal_remembered(cluster) if len(cluster) <= _LONGEST_REMEMBERED_CLUSTER else _normal(cluster)


def _add_text(sentence: _Sentence, lowered: str, start: int, end: int) -> None:
    """Append ``lowered[start:end]`` (no line breaks inside) as DeepMoji converts its words.

    Only the characters that change become pieces of their own; the rest is kept as typed.
    The original normalised word by word; NFKC never composes across whitespace, so the whole
    text normalised at once must equal the pieces, which checks them.
    """
    text = lowered[start:end]
    if text.isascii():
        sentence.add(text, start, end, identity=True)
        return
    pieces = []
    position = 0
    for match in _CONVERTED.finditer(text):
        pieces.append((text[position : match.start()], position, match.start(), True))
        pieces.append((_normal_cluster(match.group()), match.start(), match.end(), False))
        position = match.end()
    pieces.append((text[position:], position, len(text), True))
    if "".join([piece[0] for piece in pieces]) != _normal(text):
        pieces = _word_by_word(text)
    for piece, piece_start, piece_end, identity in pieces:
        if not identity:  # kept text never holds a character the table converts
            piece = piece.translate(_PUNCTUATION)
        sentence.add(piece, start + piece_start, start + piece_end, identity)


def _word_by_word(text: str) -> list[tuple[str, int, int, bool]]:
    """Pieces of ``text`` when characters interact across the fine pieces (e.g. Hangul jamo).

    Each whitespace-separated word is normalised in clusters (a starter with its marks),
    neighbours merged where normalising them together differs, or whole where that fails.
    """
    pieces = []
    position = 0
    for word in _WORD_RUN.finditer(text):
        pieces.append((text[position : word.start()], position, word.start(), True))
        clusters = [(match.group(), match.start(), match.end()) for match in _CLUSTER.finditer(word.group())]
        merged = [clusters[0]]
        for cluster in clusters[1:]:
            last = merged[-1]
            if _normal(last[0] + cluster[0]) == _normal(last[0]) + _normal(cluster[0]):
                merged.append(cluster)
            else:
                merged[-1] = (last[0] + cluster[0], last[1], cluster[2])
        if "".join(_normal(cluster[0]) for cluster in merged) != _normal(word.group()):
            merged = [(word.group(), 0, len(word.group()))]
        offset = word.start()
        pieces.extend((_normal(text), offset + a, offset + b, False) for text, a, b in merged)
        position = word.end()
    pieces.append((text[position:], position, len(text), True))
    return pieces


def _sentence(text: str) -> _Sentence:
    """DeepMoji's text preparation (steps 1-3 of the module docstring), with the offset map."""
    lowered = text.translate(_PY2_CASE).lower()
    start = len(lowered) - len(lowered.lstrip(_WHITESPACE_CHARS))
    end = len(lowered.rstrip(_WHITESPACE_CHARS))
    sentence = _Sentence()
    for line_break in _LINE_BREAK.finditer(lowered, start, max(start, end)):
        _add_text(sentence, lowered, start, line_break.start())
        sentence.add(_BREAK_TEXT, line_break.start(), line_break.end(), identity=False)
        start = line_break.end()
    _add_text(sentence, lowered, start, max(start, end))
    return sentence


# --- The public tokenizer ---------------------------------------------------------------------

#: Bytes a tokenizer's memory of raw tokens (their words and ids) may hold before it starts afresh.
DEFAULT_CACHE_BYTES = 16_000_000
#: Longest raw token remembered. No vocabulary word is longer than 28 characters; longer tokens
#: (a 4,000-character "word") rarely recur, and each would take the room of hundreds of others.
_LONGEST_REMEMBERED = 32
#: What one remembered token costs besides its strings: the (word, id) tuple and its dict slot.
_ENTRY_BYTES = sys.getsizeof(("", 0)) + 100


class Tokenizer:
    """DeepMoji's tokenization over a vocabulary: text -> ``Token``s with ids and original spans."""

    def __init__(
        self, vocabulary: Mapping[str, int], *, source: str = "the vocabulary", cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        """``source`` names the vocabulary in error messages; ``cache_bytes`` bounds what the
        tokenizer remembers of the tokens it has seen (chat repeats its tokens all the time)."""
        self._ids = _checked_vocabulary(vocabulary, source)
        self._unknown = self._ids[UNKNOWN]
        self._special_ids = frozenset(index for word, index in self._ids.items() if word.startswith("CUSTOM_"))
        self.vocabulary: Mapping[str, int] = MappingProxyType(self._ids)
        self._known: dict[str, tuple[str, int]] = {}
        self._known_bytes = 0
        self._cache_bytes = cache_bytes

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        """Read torchMoji's ``vocabulary.json`` (an object of word -> id)."""
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8-sig")
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
        starts, ends, known = sentence.starts, sentence.ends, self._known
        tokens: list[Token] = []
        previous_end = 0
        for match in _TOKEN.finditer(sentence.text()):
            raw = match.group(1)
            first, last = match.span(1)
            start, end = starts[first], ends[last - 1]
            if start < previous_end:  # a typed character that became several tokens
                start = previous_end
            if end < start:
                end = start
            previous_end = end
            word_and_id = known.get(raw) or self._learn(raw)
            tokens.append(Token(word_and_id[0], word_and_id[1], start, end))
        return tokens

    def _learn(self, raw: str) -> tuple[str, int]:
        """Word and id of a raw token, remembered if short, within ``cache_bytes`` in all."""
        word = _special(_shorten(raw))
        word_and_id = (word, self._ids.get(word, self._unknown))
        if len(raw) <= _LONGEST_REMEMBERED:
            cost = sys.getsizeof(raw) + (0 if word is raw else sys.getsizeof(word)) + _ENTRY_BYTES
            if self._known_bytes + cost > self._cache_bytes:
                self._known.clear()
                self._known_bytes = 0
            self._known[raw] = word_and_id
            self._known_bytes += cost
        return word_and_id

    def is_unknown(self, token_id: int) -> bool:
        """Whether the model reads this id as a word it never learned (``CUSTOM_UNKNOWN``)."""
        return token_id == self._unknown

    def is_special(self, token_id: int) -> bool:
        """Whether this id stands for a kind of token rather than a word: a mention, a URL, a
        number, a line break (DeepMoji's ``CUSTOM_*`` entries), or the unknown word."""
        return token_id in self._special_ids

    def token_words(self, text: str) -> list[str]:
        return [token.word for token in self.tokenize(text)]

    def encode(self, text: str) -> list[int]:
        return [token.id for token in self.tokenize(text)]


def _checked_vocabulary(vocabulary: object, source: str) -> dict[str, int]:
    """A copy of ``vocabulary`` as a dict, or ``VocabularyError`` saying what is wrong with it."""
    if not isinstance(vocabulary, Mapping):
        raise VocabularyError(f"{source} must map words to ids, got {type(vocabulary).__name__}")
    checked: dict[str, int] = {}
    for word, index in vocabulary.items():
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise VocabularyError(f"{source}: entry {word!r}: {index!r} is not an id >= 0")
        if not isinstance(word, str):
            raise VocabularyError(f"{source}: entry {word!r} is not a word (a string)")
        checked[word] = index
    missing = [token for token in REQUIRED_TOKENS if token not in checked]
    if missing:
        raise VocabularyError(f"{source} lacks DeepMoji's special tokens {', '.join(missing)}")
    return checked
