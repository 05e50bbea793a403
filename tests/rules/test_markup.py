"""normalize_markup: each kind of Discord markup becomes what the model should read."""

from __future__ import annotations

import random
import re

import pytest

from bot.rules import markup
from bot.rules.markup import normalize_markup


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi <@123> and <@!456>", "hi @user and @user"),
        ("ping <@&789> now", "ping @user now"),
        ("hey @everyone and @here", "hey @user and @user"),
        ("go to <#42> please", "go to #channel please"),
        ("so sad <:pepe_sad:1234567>", "so sad pepe sad"),
        ("<a:party_blob:99> yay", "party blob yay"),
        ("look ```py\nprint('hi')\n``` done", "look done"),
        ("run `git pull` again", "run git pull again"),
        ("the end ``code with ` tick`` here", "the end code with ` tick here"),
        ("i can ` t believe it ` s over", "i can t believe it s over"),
        ("||he dies|| at the end", "he dies at the end"),
        ("see [this page](https://example.com/a) now", "see this page now"),
        ("masked [link](<https://example.com>)", "masked link"),
        ("bare https://example.com/x stays", "bare https://example.com/x stays"),
        ("no embed <https://example.com>", "no embed https://example.com"),
        ("meet <t:1700000000:R> ok", "meet ok"),
        ("meet <t:1700000000> ok", "meet ok"),
        ("> quoted line\nreply", "quoted line reply"),
        (">>> long quote\nsecond", "long quote second"),
        ("# Title\n## Sub\n-# tiny", "Title Sub tiny"),
        ("list:\n- one\n* two\n  + three", "list: one two three"),
        ("``` not closed, still text", "``` not closed, still text"),
        ("**bold** *it* __under__ _em_ ~~strike~~", "bold it under em strike"),
        ("***both***", "both"),
        ("use </why:123> or <id:customize>", "use or"),
    ],
)
def test_markup_is_rewritten(text, expected):
    assert normalize_markup(text) == expected


def test_plain_text_is_unchanged_apart_from_whitespace():
    assert normalize_markup("  I love you so much!!!  \n") == "I love you so much!!!"


@pytest.mark.parametrize(
    "text",
    ["snake_case_name", "5 * 3 * 2", "a * b", "#blessed", "x > y", ":) <3 :-D", "**unclosed"],
)
def test_lookalikes_of_markup_survive(text):
    assert normalize_markup(text) == text


def test_escaped_markers_are_literal_characters():
    assert normalize_markup(r"\*not emphasis\* and a\_b") == "*not emphasis* and a_b"


def test_escapes_do_not_trigger_mentions_or_links():
    assert normalize_markup(r"\<@123> \[x\](https://e.com)") == "<@123> [x](https://e.com)"


def test_only_markup_leaves_nothing():
    assert normalize_markup("```\ncode only\n```") == ""
    assert normalize_markup("<t:1:R>  ") == ""
    assert normalize_markup("") == ""


def test_private_use_characters_cannot_fake_escapes():
    assert normalize_markup("\U000f0000 hi \\*") == "hi *"


def test_mentions_reach_the_tokenizer_as_custom_at(shared_dir):
    """With the real vocabulary, a Discord mention reads like a Twitter handle."""
    from bot.deepmoji.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_file(shared_dir / "deepmoji" / "vocabulary.json")
    words = tokenizer.token_words(normalize_markup("<@123> look at <#5> **now**"))
    assert words[0] == "CUSTOM_AT"
    assert "**" not in words and "now" in words


# The regexes emphasis was once stripped with: the reference for what pairs with what. They
# rescan the rest of a text from every unclosed marker (quadratic), which ``_unwrap`` must not.
REFERENCE_EMPHASIS = {
    "**": re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.DOTALL),
    "__": re.compile(r"__(?=\S)(.+?)(?<=\S)__", re.DOTALL),
    "~~": re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.DOTALL),
    "*": re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", re.DOTALL),
    "_": re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])", re.DOTALL),
}


def test_emphasis_pairs_exactly_as_the_reference_regexes_do():
    rng = random.Random(7)
    emphases = dict(zip(REFERENCE_EMPHASIS, markup._EMPHASIS))
    for _ in range(4000):
        text = "".join(rng.choice("**__~~ a-é\n.") for _ in range(rng.randrange(0, 24)))
        for marker, reference in REFERENCE_EMPHASIS.items():
            assert markup._unwrap(text, emphases[marker]) == reference.sub(r"\1", text), (marker, text)


def test_unclosed_markers_stay_as_written():
    # Many opening markers and no closing one: the inputs that made the reference quadratic.
    text = "*a-" * 1333
    assert normalize_markup(text) == text
    assert normalize_markup("**a " * 1000) == ("**a " * 1000).strip()
