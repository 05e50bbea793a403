"""Discord markup -> the plain text the DeepMoji model should see.

DeepMoji learned from tweets, so Discord's syntax is rewritten into what a tweet would have had
at that spot, or removed when a tweet would have had nothing:

- user and role mentions (``<@1>``, ``<@!1>``, ``<@&1>``) and ``@everyone`` / ``@here`` become
  ``@user``, which the tokenizer maps to ``CUSTOM_AT`` like a Twitter handle;
- channel mentions (``<#1>``) become ``#channel``, a hashtag-like word;
- custom emoji (``<:pepe_sad:1>``, ``<a:name:1>``) become their name as words (``pepe sad``):
  people name emoji after the feeling they show, so the name carries mood;
- code blocks are dropped: code says nothing about mood and its symbols would only add noise
  (an unclosed fence is shown literally by Discord, so it stays text here too); inline code keeps
  its words, because people also use a backtick as an apostrophe (``can`t ... it`s``) and
  dropping the span would silently lose real text;
- spoilers keep their inner text; masked links ``[text](url)`` keep their text; bare links stay
  (the tokenizer maps them to ``CUSTOM_URL``), ``<url>`` loses the brackets;
- timestamps (``<t:1:R>``), slash-command mentions (``</cmd:1>``) and guide links (``<id:home>``)
  are dropped;
- quote prefixes (``>``, ``>>>``), heading, subtext and list markers (``#``, ``-#``, ``-``)
  and emphasis markers (``**``, ``*``, ``__``, ``_``, ``~~``) are removed, keeping the words;
- backslash escapes (``\\*``) become the plain character, and whitespace collapses to single
  spaces.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_ESCAPABLE = r"\\*_~`|>#\-\[\]()<:@"
_ESCAPE = re.compile(rf"\\([{_ESCAPABLE}])")
#: Escaped characters hide in Supplementary Private Use Area-A until the markup is gone; input
#: characters from that area (no standard meaning, never in the vocabulary) are dropped first.
_PLACEHOLDER_BASE = 0xF0000
_PRIVATE_USE = re.compile("[\U000f0000-\U000fffff]")

_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(?!`)(.*?)(?<!`)\1(?!`)", re.DOTALL)
_SPOILER = re.compile(r"\|\|(.+?)\|\|", re.DOTALL)
_MASKED_LINK = re.compile(r"\[([^\[\]]*)\]\(<?\s*https?://[^\s)>]*>?\s*\)")
_ANGLE_LINK = re.compile(r"<(https?://[^\s>]+)>")
_CUSTOM_EMOJI = re.compile(r"<a?:(\w{1,32}):\d+>")
_USER_OR_ROLE = re.compile(r"<@[!&]?\d+>")
_EVERYONE = re.compile(r"@(?:everyone|here)\b")
_CHANNEL = re.compile(r"<#\d+>")
_DROPPED_TAGS = re.compile(r"<t:-?\d+(?::[tTdDfFRsS])?>|</[\w -]+:\d+>|<id:\w+>")
_LINE_PREFIX = re.compile(
    r"^[ \t]*(?:>>>[ \t]|>[ \t]|#{1,3}[ \t]+|-#[ \t]+|[-*+][ \t]+)",  # quote, heading, subtext, list
    re.MULTILINE,
)


@dataclass(frozen=True)
class _Emphasis:
    """One emphasis marker as Discord pairs it: ``marker``, a non-space character, anything,
    a non-space character, ``marker``; the first closing marker after an opening one closes it.

    ``opens`` and ``closes`` are zero-width patterns for every position where the marker may
    open or close a span (overlapping ones included). Pairing them by position (``_unwrap``)
    gives what the regex ``marker(?=\\S)(.+?)(?<=\\S)marker`` gives, in linear time: that regex
    rescans the rest of the text from every opening marker without a closing one, so a
    4,000-character message of ``*a-`` took 140 ms of the event loop (benchmarks/markup.py).
    """

    width: int
    opens: re.Pattern[str]
    closes: re.Pattern[str]

    @classmethod
    def of(cls, marker: str, *, word_bound: bool = False) -> _Emphasis:
        """``word_bound``: single ``*`` and ``_`` open only after, and close only before, a
        character that is neither a word character nor the marker."""
        m = re.escape(marker)
        before = rf"(?<![\w{m}])" if word_bound else ""
        after = rf"(?![\w{m}])" if word_bound else ""
        return cls(len(marker), re.compile(rf"{before}(?={m}\S)"), re.compile(rf"(?<=\S)(?={m}{after})"))


_EMPHASIS = (
    _Emphasis.of("**"),
    _Emphasis.of("__"),
    _Emphasis.of("~~"),
    _Emphasis.of("*", word_bound=True),
    _Emphasis.of("_", word_bound=True),
)


def _unwrap(text: str, emphasis: _Emphasis) -> str:
    """``text`` with every span of ``emphasis`` replaced by its content (one layer)."""
    closes = [match.start() for match in emphasis.closes.finditer(text)]
    parts, done = [], 0
    for match in emphasis.opens.finditer(text):
        start = match.start()
        if start < done:  # inside the span just unwrapped
            continue
        index = bisect.bisect_left(closes, start + emphasis.width + 1)
        if index == len(closes):  # no closing marker: none for any later opening one either
            break
        end = closes[index]
        parts += [text[done:start], text[start + emphasis.width : end]]
        done = end + emphasis.width
    return "".join(parts) + text[done:]


def normalize_markup(text: str) -> str:
    """Rewrite Discord markup in ``text`` as the plain text DeepMoji was trained on.

    Pure and total: any string is accepted; the result may be empty (only code, say), which
    callers treat as "nothing to read".
    """
    text = _PRIVATE_USE.sub("", text)
    escaped: list[str] = []

    def hide(match: re.Match[str]) -> str:
        escaped.append(match.group(1))
        return chr(_PLACEHOLDER_BASE + len(escaped) - 1)

    text = _ESCAPE.sub(hide, text)
    text = _CODE_BLOCK.sub(" ", text)
    text = _INLINE_CODE.sub(r" \2 ", text)
    text = _SPOILER.sub(r"\1", text)
    text = _MASKED_LINK.sub(r"\1", text)
    text = _ANGLE_LINK.sub(r"\1", text)
    text = _CUSTOM_EMOJI.sub(lambda match: f" {match.group(1).replace('_', ' ')} ", text)
    text = _USER_OR_ROLE.sub(" @user ", text)
    text = _EVERYONE.sub("@user", text)
    text = _CHANNEL.sub(" #channel ", text)
    text = _DROPPED_TAGS.sub(" ", text)
    text = _LINE_PREFIX.sub("", text)
    for emphasis in _EMPHASIS:
        previous = None
        while previous != text:  # nested emphasis (``***x***``) peels one layer per pass
            previous, text = text, _unwrap(text, emphasis)
    text = "".join(
        escaped[ord(char) - _PLACEHOLDER_BASE]
        if _PLACEHOLDER_BASE <= ord(char) < _PLACEHOLDER_BASE + len(escaped)
        else char
        for char in text
    )
    return " ".join(text.split())
