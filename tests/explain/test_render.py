"""Rendering: the original text survives escaping exactly, nothing the user typed acts as markup."""

from __future__ import annotations

import random
import re

import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.deepmoji.engine import Reading
from bot.deepmoji.tokenizer import Token
from bot.explain.explanation import Explanation, WordScore
from bot.explain.render import (
    DISCORD_LIMIT,
    ELLIPSIS,
    escape,
    highlighted,
    render_markdown,
    render_message,
    render_terminal,
    unescape,
)

HOSTILE_PIECES = [
    "*",
    "**",
    "_",
    "__",
    "~~",
    "||",
    "`",
    "```",
    "```py\n",
    ">",
    ">>> ",
    "# ",
    "## ",
    "-# ",
    "- ",
    "+ ",
    "1. ",
    "\\",
    "\\\\",
    "\\*",
    "[",
    "](",
    ")",
    "(",
    "<",
    ">",
    "@everyone",
    "@here",
    "<@123>",
    "<@!5>",
    "<@&1>",
    "<#1>",
    "</cmd:1>",
    "<:e:2>",
    "<t:1:R>",
    "https://evil.example/x?a=1",
    "http://a.b",
    "[click](https://x.y)",
    "<https://x.y>",
    ELLIPSIS,
    "...",
    ":",
    "//",
    "\n",
    "\n\n",
    " ",
    "  ",
    "\t",
    "love",
    "so",
    "much",
    "!!!",
    "don't",
    "😂",
    "❤️",
    "é",
    "\u200b",
    "\x1b[31m",
    "a_b_c",
    "x*y*z",
]


def hostile_texts(count: int, seed: int = 0, max_pieces: int = 30) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(HOSTILE_PIECES) for _ in range(rng.randint(1, max_pieces))) for _ in range(count)]


def unescaped_markdown_chars(markdown: str) -> list[str]:
    """Characters Discord would treat as markup: a special character not preceded by a backslash."""
    found, index = [], 0
    while index < len(markdown):
        if markdown[index] == "\\":
            index += 2
            continue
        if markdown[index] in "\\*_~|`>#-+[]()<@":
            found.append(markdown[index])
        index += 1
    return found


def bold_groups(markdown: str) -> list[str]:
    """The original text inside each of our ``**`` pairs (escaped asterisks are text)."""
    groups, inside, index = [], False, 0
    while index < len(markdown):
        if markdown[index] == "\\":
            if inside:
                groups[-1] += markdown[index + 1]
            index += 2
        elif markdown.startswith("**", index):
            inside = not inside
            groups += [""] if inside else []
            index += 2
        else:
            if inside:
                groups[-1] += markdown[index]
            index += 1
    assert not inside, "every bold span is closed"
    return groups


def explanation_of(text: str, spans_scores: list[tuple[int, int, float]], method: str = "occlusion") -> Explanation:
    words = tuple(WordScore(text[s:e] or "x", s, e, score) for s, e, score in spans_scores)
    return Explanation(text, words, ((EMOJIS[0], 0.5), (EMOJIS[3], 0.2)), method)


def word_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


@pytest.mark.parametrize("text", hostile_texts(300) + ["", "\\", "a\\", "**", "1. x\n 22. y", "ok…"])
def test_escape_round_trips_and_leaves_no_markup(text):
    escaped = escape(text)
    assert unescape(escaped) == text
    assert unescaped_markdown_chars(escaped) == []


@pytest.mark.parametrize(
    ("text", "must_not_contain"),
    [
        ("@everyone hi", "@everyone"),
        ("@here", "@here"),
        ("hey <@123>", "<@"),
        ("<@&1> <#1>", "<#"),
        ("see https://evil.example", "https://"),
        ("```py\nprint(1)\n```", "``"),
        ("||spoiler||", "||"),
        ("~~gone~~", "~~"),
        ("**bold** and __under__", "**"),
        ("> quote", "> "),
        ("# header", "# "),
        ("1. list", "1. "),
        ("[x](https://a.b)", "]("),
    ],
)
def test_mentions_links_and_markup_are_neutralised(text, must_not_contain):
    escaped = escape(text)
    assert re.search(r"(?<!\\)" + re.escape(must_not_contain), escaped) is None
    assert unescape(escaped) == text


def test_bold_markers_are_stripped_with_the_escapes():
    text = "I *love* you so_much!!! @everyone"
    spans = [(3, 7), (16, 20)]  # "love" inside asterisks, "much" after an underscore
    markdown = render_message(text, spans, DISCORD_LIMIT)
    assert "**love**" in markdown and "**much**" in markdown
    assert unescape(markdown) == text


@pytest.mark.parametrize("text", hostile_texts(150, seed=1))
def test_bold_words_with_markdown_characters_round_trip(text):
    spans = word_spans(text)[:3]
    markdown = render_message(text, spans, DISCORD_LIMIT * 10)
    assert unescape(markdown) == text
    assert bold_groups(markdown) == [text[start:end] for start, end in spans]


def test_touching_bold_words_become_one_bold_span():
    text = "love!!! you"
    markdown = render_message(text, [(0, 4), (4, 7)], DISCORD_LIMIT)
    assert markdown == "**love!!!** you"
    assert "****" not in markdown


def test_highlight_rule_top_three_clearly_positive():
    text = "a b c d e"
    spans = word_spans(text)
    scored = explanation_of(text, [(s, e, score) for (s, e), score in zip(spans, [0.5, 0.3, 0.05, 0.4, -0.9])])
    assert [w.word for w in highlighted(scored)] == ["a", "d", "b"]
    weak = explanation_of(text, [(s, e, score) for (s, e), score in zip(spans, [0.5, 0.09, 0.05, 0.0, -1])])
    assert [w.word for w in highlighted(weak)] == ["a"]  # 0.09 is under a fifth of 0.5
    negative = explanation_of(text, [(s, e, -0.1) for s, e in spans])
    assert highlighted(negative) == []
    noise = explanation_of(text, [(s, e, 0.004) for s, e in spans])  # under half a point: not clear
    assert highlighted(noise) == []
    assert "No single word stands out." in render_markdown(negative)


def test_markdown_reply_layout():
    text = "I love you > all"
    explanation = explanation_of(text, [(0, 1, 0.01), (2, 6, 0.4), (7, 10, 0.1), (11, 12, 0.0), (13, 16, -0.1)])
    reply = render_markdown(explanation)
    message, rest = reply.split("\n\n", 1)
    assert message == "I **love** **you** \\> all"
    emoji_line, scores, note = rest.split("\n")
    assert EMOJIS[0].reaction in emoji_line and "50.0%" in emoji_line
    assert scores == "**love** +0.400  ·  **you** +0.100"  # 0.1 is over a fifth of 0.4; 0.01 is not
    assert note.startswith("-# occlusion")


def read_as(text: str, total: int | None = None, known: int | None = None, unknown: int = 0) -> Reading:
    """What the model read of ``text``: its words as tokens (all known unless said otherwise)."""
    tokens = tuple(Token(m.group(), 10, m.start(), m.end()) for m in re.finditer(r"\S+", text))
    known = len(tokens) - unknown if known is None else known
    return Reading(tokens, total=len(tokens) if total is None else total, known=known, unknown=unknown)


def scored(text: str, reading: Reading | None = None, **fields) -> Explanation:
    spans = enumerate(re.finditer(r"\S+", text))
    words = tuple(WordScore(m.group(), m.start(), m.end(), 0.3 - 0.1 * i) for i, m in spans)
    return Explanation(text, words, ((EMOJIS[0], 0.9),), "occlusion", reading=reading, **fields)


def small_print(explanation: Explanation) -> list[str]:
    markdown = render_markdown(explanation).split("\n")
    notes = [line.removeprefix("-# ") for line in markdown if line.startswith("-# ")]
    assert render_terminal(explanation, ansi=False).split("\n")[-len(notes) :] == notes  # the same in a terminal
    return notes


def test_the_method_line_says_how_exact_the_scores_are():
    every = small_print(scored("hi there"))
    assert every == ["occlusion: how much the top emojis' probability drops when the word is left out. Exact."]
    estimated = (WordScore("hi", 0, 2, 0.3), WordScore("there", 3, 8, 0.001, exact=False))
    checked = Explanation("hi there", estimated, ((EMOJIS[0], 0.9),), "occlusion", window=16)
    assert small_print(checked)[-1].endswith(
        "left out. Exact for the words shown; the others were estimated and checked to score lower."
    )
    unchecked = Explanation("hi there", estimated, ((EMOJIS[0], 0.9),), "occlusion", window=16, checked=False)
    assert small_print(unchecked)[-1].endswith("the others were only estimated, and one might score higher.")
    for explanation in (checked, unchecked):
        assert "pproximate" not in render_markdown(explanation)  # nothing shown is approximate
    attention = Explanation("hi", (WordScore("hi", 0, 2, 1.0),), ((EMOJIS[0], 0.9),), "attention")
    assert small_print(attention) == ["attention: the model's attention weight on the word."]


def test_a_cut_message_says_how_much_the_model_read():
    text = "one two three"
    assert not any("Long message" in note for note in small_print(scored(text, read_as(text))))
    notes = small_print(scored(text, read_as(text, total=130)))
    assert notes[0] == "Long message: the model reads only its first 3 of 130 words and symbols."


def test_unknown_words_are_said_and_a_mostly_unknown_message_plainly():
    text = "ok zzkx qqpl wug"
    assert len(small_print(scored(text, read_as(text)))) == 1  # every word known: only the method line
    some = small_print(scored(text, read_as(text, unknown=1)))
    assert some[0] == "The model knows 3 of 4 words here; it reads the others as one unknown word."
    most = small_print(scored(text, read_as(text, unknown=3)))
    assert most[0] == "The model knows only 1 of 4 words here; it reads the others as one unknown word."


def test_to_dict_carries_what_the_reply_says():
    text = "ok zzkx qqpl"
    words = (WordScore("ok", 0, 2, 0.3), WordScore("zzkx", 3, 7, 0.2), WordScore("qqpl", 8, 12, 0.0, exact=False))
    explanation = Explanation(
        text,
        words,
        ((EMOJIS[0], 0.9),),
        "occlusion",
        window=16,
        checked=False,
        reading=read_as(text, total=40, unknown=2),
    )
    data = explanation.to_dict()
    assert data["scoring"] == "exact-shown-unchecked" and data["approximate"] is True and data["window"] == 16
    assert data["reading"] == {"tokens": 3, "total_tokens": 40, "truncated": True, "known": 1, "words": 3}
    assert data["known_words"] == pytest.approx(1 / 3)
    assert [word["exact"] for word in data["words"]] == [True, True, False]
    assert scored("hi").to_dict()["reading"] is None and scored("hi").to_dict()["scoring"] == "exact"


def long_hostile_text(seed: int, words: int = 700) -> str:
    rng = random.Random(seed)
    return " ".join(
        rng.choice(["word", "*x*", "@everyone", "<@1>", "a_b", "```", "\\", "love", "|", "é"]) for _ in range(words)
    )


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("limit", [2000, 400])
def test_long_messages_are_shortened_visibly_around_the_bold_words(seed, limit):
    text = long_hostile_text(seed)
    spans = word_spans(text)
    rng = random.Random(seed)
    chosen = rng.sample(range(len(spans)), 3)
    explanation = explanation_of(text, [(*spans[i], 1.0 - 0.1 * rank) for rank, i in enumerate(chosen)])
    reply = render_markdown(explanation, limit=limit)
    assert len(reply) <= limit
    message = reply.split("\n\n", 1)[0]
    fragments = _split_unescaped(message, ELLIPSIS)
    assert len(fragments) > 1  # something was left out, and it shows
    position = 0
    for fragment in fragments:
        original = unescape(fragment.strip(" ")) if fragment.strip(" ") else ""
        if not original:
            continue
        found = text.find(original, position)
        assert found >= 0, "every fragment is a piece of the original text"
        # Cut only between words: a fragment starts and ends at a word boundary.
        assert found == 0 or text[found - 1] == " "
        assert found + len(original) == len(text) or text[found + len(original)] == " "
        position = found + len(original)
    for i in chosen:
        assert f"**{escape(text[spans[i][0] : spans[i][1]])}**" in message


def _split_unescaped(markdown: str, separator: str) -> list[str]:
    parts, current, index = [], [], 0
    while index < len(markdown):
        if markdown[index] == "\\":
            current.append(markdown[index : index + 2])
            index += 2
        elif markdown[index] == separator:
            parts.append("".join(current))
            current, index = [], index + 1
        else:
            current.append(markdown[index])
            index += 1
    parts.append("".join(current))
    return parts


def test_one_giant_word_is_cut_between_escapes():
    text = "*" * 1500 + "love" + "_" * 1500
    explanation = explanation_of(text, [(1500, 1504, 0.5)])
    reply = render_markdown(explanation)
    assert len(reply) <= DISCORD_LIMIT
    message = reply.split("\n\n", 1)[0]
    assert "**love**" in message and message.startswith(ELLIPSIS) and message.endswith(ELLIPSIS)
    inner = unescape(message.strip(ELLIPSIS + " "))
    assert inner in text and unescaped_markdown_chars(message.replace("**", "")) == []


def test_short_messages_are_never_shortened():
    text = long_hostile_text(0, words=100)
    explanation = explanation_of(text, [(0, 4, 0.5)])
    message = render_markdown(explanation, limit=10_000).split("\n\n", 1)[0]
    assert unescape(message) == text


def test_terminal_output_bold_and_safe():
    text = "I love you\x1b[2J!"
    explanation = explanation_of(text, [(0, 1, 0.01), (2, 6, 0.4), (7, 10, 0.1), (10, 14, 0.0)])
    plain = render_terminal(explanation, ansi=False)
    assert plain.splitlines()[0] == "I **love** **you**\ufffd[2J!"
    coloured = render_terminal(explanation, ansi=True)
    assert coloured.splitlines()[0] == "I \x1b[1mlove\x1b[0m \x1b[1myou\x1b[0m\ufffd[2J!"
    assert "\x1b[2J" not in coloured
    assert "**love** +0.400" in plain
