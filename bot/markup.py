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

import re

_ESCAPABLE = r"\\*_~`|>#\-\[\]()<:@"
_ESCAPE = re.compile(rf"\\([{_ESCAPABLE}])")
#: Escaped characters hide in Supplementary Private Use Area-A until the markup is gone; input
#: characters from that area (no standard meaning, never in the vocabulary) are dropped first.
_PLACEHOLDER_BASE = 0xF0000
_PRIVATE_USE = re.compile("[\U000F0000-\U000FFFFF]")

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
_EMPHASIS = (
    re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.DOTALL),
    re.compile(r"__(?=\S)(.+?)(?<=\S)__", re.DOTALL),
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.DOTALL),
    re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", re.DOTALL),
    re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])", re.DOTALL),
)


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
    for pattern in _EMPHASIS:
        previous = None
        while previous != text:  # nested emphasis (``***x***``) peels one layer per pass
            previous, text = text, pattern.sub(r"\1", text)
    text = "".join(
        escaped[ord(char) - _PLACEHOLDER_BASE]
        if _PLACEHOLDER_BASE <= ord(char) < _PLACEHOLDER_BASE + len(escaped)
        else char
        for char in text
    )
    return " ".join(text.split())
