"""Which of DeepMoji's 64 emojis a person typed: ``/whymoji block``, ``unblock`` and ``reactions.blocked``.

One class reaches us in several spellings: with or without the variation selector U+FE0F
(``❤`` and ``❤️``, as keyboards and Discord's picker differ), with a skin tone (``👍🏽``), as a
gendered person (``💁‍♀️``), and class 47 as the outline heart ``♡`` of the overview picture or
the white heart ``🤍`` the bot reacts with. Emojis may be run together or separated by spaces
or commas. The text is cut into grapheme clusters (what a reader sees as one character, as
Unicode defines it: ``regex``'s ``\\X``), so a sequence that merely starts with one of ours,
such as ``❤️‍🔥`` or a keycap, is not mistaken for it. Everything else (words, custom Discord
emojis, other emojis) comes back as typed, so the caller can list it to the person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import regex

from bot.deepmoji.emojis import EMOJIS, VS16, Emoji

#: Marks that change how an emoji looks, not which one it is: the text and emoji variation
#: selectors, the five skin tones, and a zero-width joiner followed by a gender sign.
_VARIANT_MARKS = re.compile("[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]|\u200d[\u2640\u2642]")
_SEPARATORS = re.compile(r"[\s,]+")

#: Every spelling of a class without its variant marks -> the class: its ``char`` and its
#: ``reaction`` (which differ for the text-style symbols and for class 47).
_BY_BASE: dict[str, Emoji] = {
    spelling.replace(VS16, ""): emoji for emoji in EMOJIS for spelling in (emoji.char, emoji.reaction)
}


@dataclass(frozen=True)
class ParsedEmojis:
    """The classes found, in the order typed and each once, and the pieces that are none of them."""

    emojis: tuple[Emoji, ...]
    not_understood: tuple[str, ...]


def parse_emojis(text: str) -> ParsedEmojis:
    """Read ``text`` as DeepMoji emojis; ``not_understood`` keeps each other run as it was typed."""
    found: dict[int, Emoji] = {}
    not_understood: list[str] = []
    for piece in _SEPARATORS.split(text):
        run = ""
        for cluster in regex.findall(r"\X", piece):
            emoji = _BY_BASE.get(_VARIANT_MARKS.sub("", cluster))
            if emoji is None:
                run += cluster
                continue
            found.setdefault(emoji.index, emoji)
            if run:
                not_understood.append(run)
                run = ""
        if run:
            not_understood.append(run)
    return ParsedEmojis(tuple(found.values()), tuple(not_understood))


def emoji_classes(text: str) -> frozenset[int]:
    """The class indices of the emojis in ``text``; ``ValueError`` naming anything else."""
    parsed = parse_emojis(text)
    if parsed.not_understood:
        raise ValueError(f"not one of DeepMoji's 64 emojis: {' '.join(parsed.not_understood)}")
    return frozenset(emoji.index for emoji in parsed.emojis)
