"""Emojis as people type them: every class in every common spelling, and the rest listed back."""

from __future__ import annotations

import pytest

from bot.deepmoji.emoji_parsing import emoji_classes, parse_emojis
from bot.deepmoji.emojis import EMOJIS, VS16

SKIN_TONES = ["\U0001f3fb", "\U0001f3fc", "\U0001f3fd", "\U0001f3fe", "\U0001f3ff"]
ZWJ, FEMALE, MALE = "\u200d", "\u2640", "\u2642"


def spellings(emoji):
    """The ways a person may type one class: bare, as the bot reacts, with and without U+FE0F."""
    return {emoji.char, emoji.reaction, emoji.char + VS16, emoji.reaction.replace(VS16, ""), emoji.reaction + VS16}


@pytest.mark.parametrize("emoji", EMOJIS, ids=[e.name for e in EMOJIS])
def test_every_class_round_trips_in_every_spelling(emoji):
    for typed in spellings(emoji):
        parsed = parse_emojis(typed)
        assert parsed.emojis == (emoji,) and parsed.not_understood == (), repr(typed)
    # What the bot shows (the reaction) reads back as the same class.
    assert parse_emojis(emoji.reaction).emojis[0].reaction == emoji.reaction


def test_class_47_is_the_outline_heart_or_the_white_heart():
    for typed in ("♡", "♡\ufe0f", "🤍", "🤍\ufe0f"):
        assert [e.index for e in parse_emojis(typed).emojis] == [47]
    assert [e.index for e in parse_emojis("❤️ ♥️ 🤍").emojis] == [8, 24, 47]  # three different hearts


@pytest.mark.parametrize(
    ("typed", "index"),
    [
        ("👍" + SKIN_TONES[2], 33),
        ("✌" + SKIN_TONES[4], 30),
        ("🙏" + SKIN_TONES[0], 21),
        ("💁" + ZWJ + FEMALE + VS16, 26),
        ("🙅" + SKIN_TONES[3] + ZWJ + MALE + VS16, 56),
        ("🙅" + ZWJ + MALE, 56),
        ("❤\ufe0e", 8),  # text presentation selector
    ],
)
def test_skin_tones_genders_and_presentation_are_the_same_class(typed, index):
    parsed = parse_emojis(typed)
    assert [e.index for e in parsed.emojis] == [index] and parsed.not_understood == ()


@pytest.mark.parametrize("typed", ["🔫💀", "🔫 💀", "🔫,💀", "🔫, 💀", " 🔫\n,, 💀 ", "🔫️💀", "🔫 💀 🔫"])
def test_several_emojis_in_one_argument(typed):
    parsed = parse_emojis(typed)
    assert [e.index for e in parsed.emojis] == [42, 51] and parsed.not_understood == ()


def test_all_64_run_together_come_back_in_order():
    typed = "".join(emoji.reaction for emoji in EMOJIS)
    assert parse_emojis(typed).emojis == EMOJIS


@pytest.mark.parametrize(
    "typed",
    [
        "gun",
        ":pistol:",
        "<:pepe_sad:123456789012345678>",
        "❤️\u200d🔥",  # heart on fire: starts with ❤ but is another emoji
        "🫠",  # an emoji, but not one of DeepMoji's 64
        "1️⃣",
        "🔫\u20e0",  # pistol with a prohibition mark
        "🇫🇷",
        SKIN_TONES[0],
    ],
)
def test_anything_else_is_not_understood_as_typed(typed):
    parsed = parse_emojis(typed)
    assert parsed.emojis == () and parsed.not_understood == (typed,)


def test_understood_and_not_understood_are_separated():
    parsed = parse_emojis("🔫gun💀, no way 😈")
    assert [e.index for e in parsed.emojis] == [42, 51, 44]
    assert parsed.not_understood == ("gun", "no", "way")


def test_nothing_typed_is_nothing_found():
    assert parse_emojis(" , ") == parse_emojis("")
    assert parse_emojis("").emojis == () and parse_emojis("").not_understood == ()


def test_emoji_classes_names_what_it_does_not_understand():
    assert emoji_classes("🔫 💀") == {42, 51}
    assert emoji_classes("") == frozenset()
    with pytest.raises(ValueError, match="not one of DeepMoji's 64 emojis: gun <:x:1>"):
        emoji_classes("🔫 gun <:x:1>")
