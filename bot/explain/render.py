"""Explanations as text: Discord markdown (escaped, length-bounded) and terminal output.

The user's message is shown character for character with its most influential words in bold
(``highlighted``: the rule is ``bot.explain.highlight``'s), then the top emojis, the bold words'
scores, and small notes: when the model read only the start of a long message, when it does not
know some of the words, and the method, with how exact its scores are.

Markdown safety: every character Discord could read as markup (``\\ * _ ~ | ` > # - + [ ] ( )
< @ …``) gets a backslash, which Discord hides, as does ``:`` before ``//`` (links) and the dot
of ``1.`` at a line start (lists). Mentions (``@everyone``, ``<@123>``, ``<#1>``) and links are
thereby plain text, code blocks cannot open, and ``unescape`` gives back the exact original.
Our own ``**`` markers are the only unescaped asterisks, our ``__`` (the one-emoji view's
underline, ``bot.explain.explore``) the only unescaped underscores, and a lone ``…``
(unescaped) only ever marks text we left out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from bot.explain.explanation import EXACT, EXACT_SHOWN, EXACT_SHOWN_UNCHECKED, METHODS, Explanation, WordScore
from bot.explain.highlight import highlighted_indices

DISCORD_LIMIT = 2000
BOLD = "**"
#: How the one-emoji view marks the words that lower the emoji (``bot.explain.explore``).
UNDERLINE = "__"
ELLIPSIS = "…"
#: Longest word shown in the score list (a pasted blob is one "word").
SCORE_WORD_CHARS = 40
#: Said instead of the score list when no word is bold.
NO_HIGHLIGHT = "No single word stands out."

_ALWAYS_ESCAPED = frozenset("\\*_~|`>#-+[]()<@" + ELLIPSIS)
_LINK_COLON = re.compile(r":(?=//)")
_LIST_DOT = re.compile(r"^[ \t]*\d+(\.)", re.MULTILINE)
_WORD = re.compile(r"\S+")
ANSI_BOLD, ANSI_UNDERLINE, ANSI_RESET = "\x1b[1m", "\x1b[4m", "\x1b[0m"


def format_score(score: float) -> str:
    """A score or a word's effect as every explanation prints it: signed, three decimals (``+0.219``)."""
    return f"{score:+.3f}"


def format_probability(probability: float) -> str:
    """A probability as every explanation prints it: a percentage with one decimal (``17.6%``)."""
    return f"{probability:.1%}"


def highlighted(explanation: Explanation) -> list[WordScore]:
    """The words to show in bold, best first (``bot.explain.highlight``)."""
    return [explanation.words[index] for index in highlighted_indices([word.score for word in explanation.words])]


def escape_pieces(text: str) -> list[str]:
    """Each character of ``text`` as it must appear in markdown (itself or backslash + itself).

    Per character, so that any cut between characters is also a cut between escapes.
    """
    pieces = ["\\" + char if char in _ALWAYS_ESCAPED else char for char in text]
    for match in _LINK_COLON.finditer(text):
        pieces[match.start()] = "\\:"
    for match in _LIST_DOT.finditer(text):
        pieces[match.start(1)] = "\\."
    return pieces


def escape(text: str) -> str:
    """``text`` made inert for Discord markdown; ``unescape`` reverses it exactly."""
    return "".join(escape_pieces(text))


def unescape(markdown: str) -> str:
    """Drop the escaping backslashes and our ``**`` and ``__`` markers: the original text comes back."""
    out = []
    index = 0
    while index < len(markdown):
        char = markdown[index]
        if char == "\\" and index + 1 < len(markdown):
            out.append(markdown[index + 1])
            index += 2
        elif markdown.startswith((BOLD, UNDERLINE), index):
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


@dataclass(frozen=True)
class _Layout:
    """The original text prepared for rendering: escaped pieces, their running lengths, marked groups."""

    text: str
    pieces: list[str]
    offsets: list[int]  # offsets[i] = rendered length of text[:i]
    groups: list[tuple[int, int, str]]  # merged marked spans (start, end, marker), in text order

    @classmethod
    def build(cls, text: str, spans: Sequence[tuple[int, int]], underlined: Sequence[tuple[int, int]] = ()) -> _Layout:
        pieces = escape_pieces(text)
        offsets = [0]
        for piece in pieces:
            offsets.append(offsets[-1] + len(piece))
        groups = [(s, e, BOLD) for s, e in _merge(spans)] + [(s, e, UNDERLINE) for s, e in _merge(underlined)]
        return cls(text, pieces, offsets, sorted(groups))

    def cost(self, start: int, end: int) -> int:
        marks = sum(len(marker) * 2 for s, e, marker in self.groups if start <= s and e <= end)
        return self.offsets[end] - self.offsets[start] + marks

    def render(self, start: int, end: int) -> str:
        opening: dict[int, str] = {}
        closing: dict[int, str] = {}
        for s, e, marker in self.groups:
            if start <= s and e <= end:
                opening[s] = opening.get(s, "") + marker
                closing[e] = marker + closing.get(e, "")
        out = []
        for index in range(start, end):
            out.append(closing.get(index, "") + opening.get(index, ""))
            out.append(self.pieces[index])
        out.append(closing.get(end, "") if end > start else "")
        return "".join(out)


def _merge(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted spans with touching ones joined, so ``**a****b**`` never happens."""
    merged: list[list[int]] = []
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def render_message(
    text: str, spans: Sequence[tuple[int, int]], budget: int, underlined: Sequence[tuple[int, int]] = ()
) -> str:
    """``text`` escaped with ``spans`` in bold (and ``underlined`` underlined), at most ``budget`` characters.

    Too long a message keeps the parts around the marked words (bold first, each list best
    first), grown a whole word at a time, with ``…`` where text was left out. Only a single
    "word" longer than the budget is cut inside, and then still between two escaped characters.
    """
    layout = _Layout.build(text, spans, underlined)
    if layout.cost(0, len(text)) <= budget:
        return layout.render(0, len(text))
    by_priority = [span for span in (*spans, *underlined) if span[1] > span[0]]
    word_spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    characters = _characters(text)
    for units, marked in ((word_spans, True), (characters, True), (characters, False)):
        shortened = _shorten(layout if marked else _Layout.build(text, []), units, by_priority, budget)
        if shortened is not None:
            return shortened
    return ""


def _characters(text: str) -> list[tuple[int, int]]:
    return [(index, index + 1) for index in range(len(text)) if not text[index].isspace()]


def _shorten(
    layout: _Layout, units: list[tuple[int, int]], anchors: Sequence[tuple[int, int]], budget: int
) -> str | None:
    """Keep whole ``units`` around the anchors (marked spans by priority) within ``budget``."""
    if not units:
        return None
    group_spans = [span for span in anchors if any(s <= span[0] and span[1] <= e for s, e, _ in layout.groups)]
    seeds = [_covering(units, span) for span in group_spans] or [(0, 0)]
    intervals: list[tuple[int, int]] = []
    for seed in seeds:
        candidate = _union(intervals + [seed])
        if _total_cost(layout, units, candidate) <= budget:
            intervals = candidate
    if not intervals:
        return None
    grown = True
    while grown:
        grown = False
        for position in range(len(intervals)):
            for step in ((-1, 0), (0, 1)):
                if position >= len(intervals):
                    break
                first, last = intervals[position]
                wider = (max(first + step[0], 0), min(last + step[1], len(units) - 1))
                if wider == (first, last):
                    continue
                candidate = _union(intervals[:position] + [wider] + intervals[position + 1 :])
                if _total_cost(layout, units, candidate) <= budget:
                    intervals, grown = candidate, True
    return _join(layout, units, intervals)


def _covering(units: list[tuple[int, int]], span: tuple[int, int]) -> tuple[int, int]:
    """Indices of the first and last unit overlapping ``span``."""
    inside = [i for i, (s, e) in enumerate(units) if s < span[1] and e > span[0]]
    return (inside[0], inside[-1])


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Unit intervals sorted, overlapping or neighbouring ones joined."""
    merged: list[list[int]] = []
    for first, last in sorted(intervals):
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [(first, last) for first, last in merged]


def _char_range(layout: _Layout, units: list[tuple[int, int]], interval: tuple[int, int]) -> tuple[int, int]:
    """Characters of a unit interval; the text's own edges are kept whole (leading spaces too)."""
    first, last = interval
    start = 0 if first == 0 else units[first][0]
    end = len(layout.text) if last == len(units) - 1 else units[last][1]
    # Marked groups are never split: widen to any group the edges fall into.
    for s, e, _ in layout.groups:
        if s < start < e:
            start = s
        if s < end < e:
            end = e
    return start, end


def _pieces(
    layout: _Layout, units: list[tuple[int, int]], intervals: list[tuple[int, int]]
) -> tuple[list[tuple[int, int]], str, str]:
    """(start, end) character ranges and the ellipses around them."""
    ranges = [_char_range(layout, units, interval) for interval in intervals]
    head = "" if ranges[0][0] == 0 else ELLIPSIS + " "
    tail = "" if ranges[-1][1] == len(layout.text) else " " + ELLIPSIS
    return ranges, head, tail


def _total_cost(layout: _Layout, units: list[tuple[int, int]], intervals: list[tuple[int, int]]) -> int:
    ranges, head, tail = _pieces(layout, units, intervals)
    separators = (len(ranges) - 1) * len(f" {ELLIPSIS} ")
    return len(head) + len(tail) + separators + sum(layout.cost(s, e) for s, e in ranges)


def _join(layout: _Layout, units: list[tuple[int, int]], intervals: list[tuple[int, int]]) -> str:
    ranges, head, tail = _pieces(layout, units, intervals)
    return head + f" {ELLIPSIS} ".join(layout.render(s, e) for s, e in ranges) + tail


def boldable(text: str, word: WordScore) -> bool:
    """Only visible text can be bold (not an empty span or a line break)."""
    return not text[word.start : word.end].isspace() and word.end > word.start


def score_word(text: str, word: WordScore) -> str:
    """The word as written in the message (the token if that is blank), shortened if a pasted blob."""
    written = text[word.start : word.end] if boldable(text, word) else word.word
    if len(written) > SCORE_WORD_CHARS:
        written = written[: SCORE_WORD_CHARS - 1] + ELLIPSIS
    return written


def emoji_line(explanation: Explanation) -> str:
    return "  ·  ".join(
        f"{emoji.reaction} {format_probability(probability)}" for emoji, probability in explanation.top_emojis
    )


#: What the method line adds about exactness (``Explanation.scoring``), for occlusion.
EXACTNESS = {
    EXACT: "Exact.",
    EXACT_SHOWN: "Exact for the words shown; the others were estimated and checked to score lower.",
    EXACT_SHOWN_UNCHECKED: "Exact for the words shown; the others were only estimated, and one might score higher.",
}


def notes(explanation: Explanation, method: str | None = None) -> list[str]:
    """The small print: what the model read of the message, then the method and how exact it is
    (``method``, when given, is the method line instead: ``bot.explain.explore``'s views).

    Unknown words are mentioned whenever there are some, not only below the reactions gate's
    half: an unknown word can be bold, and its score is then the unknown token's, not the word's.
    """
    lines = []
    reading = explanation.reading
    if reading is not None and reading.truncated:
        lines.append(
            f"Long message: the model reads only its first {len(reading.tokens)} of {reading.total} words and symbols."
        )
    if reading is not None and reading.unknown:
        only = "only " if reading.known_share < 0.5 else ""
        lines.append(
            f"The model knows {only}{reading.known} of {reading.word_count} words here; "
            "it reads the others as one unknown word."
        )
    if method is None:
        method = f"{explanation.method}: {METHODS.get(explanation.method, '')}."
        if explanation.method == "occlusion":
            method += " " + EXACTNESS[explanation.scoring]
    return lines + [method]


def render_markdown(explanation: Explanation, limit: int = DISCORD_LIMIT) -> str:
    """The ``/why`` reply: the message with bold words, the top emojis, the bold words' scores."""
    best = highlighted(explanation)
    if best:
        scores = "  ·  ".join(
            f"{BOLD}{escape(score_word(explanation.text, word))}{BOLD} {format_score(word.score)}" for word in best
        )
    else:
        scores = NO_HIGHLIGHT
    footer = [emoji_line(explanation), scores] + [f"-# {note}" for note in notes(explanation)]
    spans = [(word.start, word.end) for word in best if boldable(explanation.text, word)]
    return render_with_footer(explanation.text, spans, (), footer, limit)


def render_with_footer(
    text: str,
    spans: Sequence[tuple[int, int]],
    underlined: Sequence[tuple[int, int]],
    footer: Sequence[str],
    limit: int,
) -> str:
    """The message (``render_message``, shortened to fit) and, after a blank line, the ``footer``
    lines (already markdown), together at most ``limit`` characters."""
    tail = "\n\n" + "\n".join(footer)
    budget = limit - len(tail)
    if budget < 1:
        raise ValueError(f"limit {limit} leaves no room for the message")
    return render_message(text, spans, budget, underlined) + tail


def printable(text: str) -> str:
    """Control characters shown as U+FFFD: a message must not drive the terminal."""
    return "".join("\ufffd" if unicodedata.category(char) == "Cc" and char not in "\n\t" else char for char in text)


def render_terminal(explanation: Explanation, ansi: bool) -> str:
    """The same explanation for a terminal: bold via ANSI when ``ansi``, else ``**`` markers."""
    opening, closing = (ANSI_BOLD, ANSI_RESET) if ansi else (BOLD, BOLD)
    best = highlighted(explanation)
    text = explanation.text
    lines = [terminal_message(text, [(word.start, word.end) for word in best if boldable(text, word)], (), ansi)]
    lines += ["", emoji_line(explanation)]
    lines += [f"{opening}{printable(score_word(text, word))}{closing} {format_score(word.score)}" for word in best] or [
        NO_HIGHLIGHT
    ]
    lines += notes(explanation)
    return "\n".join(lines)


def terminal_message(
    text: str, spans: Sequence[tuple[int, int]], underlined: Sequence[tuple[int, int]], ansi: bool
) -> str:
    """``text`` made printable with ``spans`` bold and ``underlined`` underlined: ANSI when
    ``ansi``, else the markdown markers."""
    styles = {BOLD: (ANSI_BOLD, ANSI_RESET), UNDERLINE: (ANSI_UNDERLINE, ANSI_RESET)}
    groups = sorted([(s, e, BOLD) for s, e in _merge(spans)] + [(s, e, UNDERLINE) for s, e in _merge(underlined)])
    out, cursor = [], 0
    for start, end, marker in groups:
        opening, closing = styles[marker] if ansi else (marker, marker)
        out += [printable(text[cursor:start]), opening, printable(text[start:end]), closing]
        cursor = end
    out.append(printable(text[cursor:]))
    return "".join(out)
