"""The 64-class emoji table: shape, uniqueness and reactions Discord accepts."""

from __future__ import annotations

import re

import pytest

from bot.deepmoji.emojis import EMOJIS, VS16, Emoji

# The qualification rule, from Unicode's emoji-data.txt (Emoji_Presentation property):
# an emoji whose default presentation is text is fully qualified only with U+FE0F after it;
# one whose default is emoji presentation is fully qualified on its own.

#: Emoji below U+1F000 whose default presentation is *emoji* (Emoji_Presentation=Yes).
BMP_EMOJI_PRESENTATION = frozenset(
    "⌚⌛⏩⏪⏫⏬⏰⏳◽◾☔☕♈♉♊♋♌♍♎♏♐♑♒♓♿⚓⚡⚪⚫⚽⚾⛄⛅⛎⛔⛪⛲⛳⛵⛺⛽"
    "✅✊✋✨❌❎❓❔❕❗➕➖➗➰➿⬛⬜⭐⭕"
)

#: Emoji below U+1F000 whose default presentation is *text* (Emoji_Presentation=No): the
#: Miscellaneous Symbols and Dingbats ones, the blocks DeepMoji's BMP classes come from.
BMP_TEXT_PRESENTATION = frozenset("☀☁☂☃☄☎☑☘☝☠☢☣☦☪☮☯☸☹☺♀♂♟♠♣♥♦♨♻♾⚒⚔⚕⚖⚗⚙⚛⚜⚠⚧⚰⚱⛈⛏⛑⛓⛩⛰⛱⛴⛷⛸⛹✂✈✉✌✍✏✒✔✖✝✡✳✴❄❇❣❤➡")

#: Code points from U+1F300 up whose default presentation is text; every other assigned
#: emoji from U+1F300 to U+1FAFF defaults to emoji presentation.
SUPPLEMENTARY_TEXT_PRESENTATION = frozenset(
    chr(code)
    for code in (
        *range(0x1F321, 0x1F32D),
        0x1F336,
        0x1F37D,
        0x1F396,
        0x1F397,
        0x1F399,
        0x1F39A,
        0x1F39B,
        0x1F39E,
        0x1F39F,
        *range(0x1F3CB, 0x1F3CF),
        *range(0x1F3D4, 0x1F3E0),
        0x1F3F3,
        0x1F3F5,
        0x1F3F7,
        0x1F43F,
        0x1F441,
        0x1F4FD,
        0x1F549,
        0x1F54A,
        0x1F56F,
        0x1F570,
        *range(0x1F573, 0x1F57A),
        0x1F587,
        *range(0x1F58A, 0x1F58E),
        0x1F590,
        0x1F5A5,
        0x1F5A8,
        0x1F5B1,
        0x1F5B2,
        0x1F5BC,
        0x1F5C2,
        0x1F5C3,
        0x1F5C4,
        0x1F5D1,
        0x1F5D2,
        0x1F5D3,
        0x1F5DC,
        0x1F5DD,
        0x1F5DE,
        0x1F5E1,
        0x1F5E3,
        0x1F5E8,
        0x1F5EF,
        0x1F5F3,
        0x1F5FA,
        0x1F6CB,
        0x1F6CD,
        0x1F6CE,
        0x1F6CF,
        *range(0x1F6E0, 0x1F6E6),
        0x1F6E9,
        0x1F6F0,
        0x1F6F3,
    )
)


def needs_vs16(char: str) -> bool:
    """Whether ``char`` is an emoji with default text presentation (so it needs U+FE0F)."""
    return char in BMP_TEXT_PRESENTATION or char in SUPPLEMENTARY_TEXT_PRESENTATION


def is_emoji(char: str) -> bool:
    return char in BMP_EMOJI_PRESENTATION or char in BMP_TEXT_PRESENTATION or 0x1F300 <= ord(char) <= 0x1FAFF


def is_fully_qualified(reaction: str) -> bool:
    """One emoji code point, followed by U+FE0F exactly when its default is text."""
    if not reaction or not is_emoji(reaction[0]):
        return False
    return reaction[1:] == (VS16 if needs_vs16(reaction[0]) else "")


def test_there_are_64_classes_in_index_order():
    assert len(EMOJIS) == 64
    assert [emoji.index for emoji in EMOJIS] == list(range(64))
    assert all(isinstance(emoji, Emoji) for emoji in EMOJIS)


def test_entries_are_frozen():
    with pytest.raises(AttributeError):
        EMOJIS[0].reaction = "x"  # type: ignore[misc]


def test_names_reactions_and_chars_are_unique():
    for field in ("name", "char", "reaction"):
        values = [getattr(emoji, field) for emoji in EMOJIS]
        assert len(set(values)) == 64, field


def test_names_are_snake_case():
    for emoji in EMOJIS:
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", emoji.name), emoji


@pytest.mark.parametrize("emoji", EMOJIS, ids=lambda emoji: f"{emoji.index}-{emoji.name}")
def test_reaction_is_a_fully_qualified_unicode_emoji(emoji):
    assert emoji.reaction.isascii() is False
    assert not emoji.reaction.startswith("<"), "custom emojis are not allowed"
    assert is_fully_qualified(emoji.reaction), [hex(ord(c)) for c in emoji.reaction]


def test_reaction_is_the_shown_character_except_the_outline_heart():
    for emoji in EMOJIS:
        if emoji.index == 47:
            continue
        assert emoji.reaction.removesuffix(VS16) == emoji.char, emoji


def test_outline_heart_maps_to_the_white_heart_emoji():
    outline = EMOJIS[47]
    assert outline.char == "\u2661"
    assert not is_emoji(outline.char)
    assert outline.reaction == "\U0001f90d"


def test_text_default_classes_carry_vs16():
    with_vs16 = {emoji.index for emoji in EMOJIS if emoji.reaction.endswith(VS16)}
    assert with_vs16 == {8, 16, 24, 30}


def test_rule_rejects_unqualified_and_over_qualified_forms():
    assert not is_fully_qualified("\u2764")
    assert is_fully_qualified("\u2764" + VS16)
    assert not is_fully_qualified("\U0001f602" + VS16)
    assert not is_fully_qualified(":)")
    assert not is_fully_qualified("<:custom:123>")
