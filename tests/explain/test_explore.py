"""The one-emoji and one-word views: the right words and figures, escaped like ``/why``, within Discord's limit."""

from __future__ import annotations

import random
import re
from dataclasses import replace

import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.deepmoji.engine import Engine
from bot.deepmoji.files import ModelFiles
from bot.explain import explain
from bot.explain.explanation import Explanation, WordScore
from bot.explain.explore import (
    NotExplorable,
    influential_words,
    lowering,
    raising,
    render_emoji_markdown,
    render_emoji_terminal,
    render_word_markdown,
    render_word_terminal,
)
from bot.explain.render import DISCORD_LIMIT, ELLIPSIS, unescape
from tests.explain.test_render import hostile_texts, long_hostile_text, unescaped_markdown_chars

TOP = ((EMOJIS[39], 0.4), (EMOJIS[10], 0.2), (EMOJIS[52], 0.1), (EMOJIS[1], 0.05), (EMOJIS[58], 0.05))
#: What a word's absence leaves on top, unless a test says otherwise.
WITHOUT = ((EMOJIS[39], 0.3), (EMOJIS[10], 0.25), (EMOJIS[52], 0.1), (EMOJIS[1], 0.05), (EMOJIS[58], 0.04))


def explored(text: str, effects: list[tuple[float, ...]], **fields) -> Explanation:
    """An explanation of ``text``'s whitespace-separated words with these effects on ``TOP``."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    assert len(spans) == len(effects)
    words = tuple(
        WordScore(text[s:e], s, e, sum(effect), True, effect, WITHOUT) for (s, e), effect in zip(spans, effects)
    )
    return Explanation(text, words, fields.pop("top", TOP), "occlusion", **fields)


def lines_after_message(markdown: str) -> list[str]:
    return markdown.rsplit("\n\n", 1)[1].split("\n")  # the lines after the message have no blank line


def message_part(markdown: str) -> str:
    return markdown.rsplit("\n\n", 1)[0]


SIMPLE = explored(
    "thanks you saved my day !! happy",
    [
        (-0.006, 0.011, 0, 0, 0),
        (-0.087, 0.068, 0, 0, 0),
        (-0.141, 0.107, 0, 0, 0),
        (0.001, 0.008, 0, 0, 0),
        (0.217, 0.066, 0, 0, 0),
        (0.175, -0.236, 0, 0, 0),
        (-0.246, 0.133, 0, 0, 0),
    ],
)


def test_one_emoji_raising_words_bold_lowering_underlined_method_names_it():
    markdown = render_emoji_markdown(SIMPLE, 39)
    assert message_part(markdown) == "thanks __you__ __saved__ my **day** **!!** __happy__"
    title, up, down, method = lines_after_message(markdown)
    assert title == "😷 face with medical mask: 40.0%"
    assert up == "Raise it most: **day** +0.217  ·  **!!** +0.175"  # +0.001 is under half a point
    assert down == "Lower it most: __happy__ -0.246  ·  __saved__ -0.141  ·  __you__ -0.087"
    assert method.startswith("-# occlusion for 😷: how much 😷's probability drops") and method.endswith("Exact.")


def test_one_emoji_lists_follow_the_bold_rule_on_that_emojis_effects():
    assert raising(SIMPLE, 0) == [4, 5]
    assert lowering(SIMPLE, 0) == [6, 2, 1]  # 0.087 is over a fifth of 0.246
    assert raising(SIMPLE, 1) == [6, 2, 1]  # at most three: +0.066 is left out
    assert lowering(SIMPLE, 1) == [5]
    assert raising(SIMPLE, 2) == [] and lowering(SIMPLE, 2) == []  # no effect at all
    flat = explored("a b", [(0.001, 0, 0, 0, 0), (-0.004, 0, 0, 0, 0)])
    assert raising(flat, 0) == [] and lowering(flat, 0) == []
    _, up, down, _ = lines_after_message(render_emoji_markdown(flat, 39))
    assert up == "Raise it most: no single word stands out." and down == "Lower it most: no single word stands out."


def test_one_word_effects_without_it_and_the_new_top_emoji():
    markdown = render_word_markdown(SIMPLE, 4)
    assert message_part(markdown) == "thanks you saved my **day** !! happy"
    effects, without, top_five, method = lines_after_message(markdown)
    assert effects == "What **day** does: 😷 +0.217  ·  😁 +0.066  ·  😖 +0.000  ·  😒 +0.000  ·  👊 +0.000"
    assert without.startswith("Without **day**: 😷 40.0% → 18.3%  ·  😁 20.0% → 13.4%  ·  😖 10.0% → 10.0%")
    assert without.endswith(", and 😷 stays on top.")
    assert top_five == "Top five without it: 😷 30.0%  ·  😁 25.0%  ·  😖 10.0%  ·  😒 5.0%  ·  👊 4.0%"
    assert method.startswith("-# occlusion: a word's effect on an emoji is the emoji's probability with the word")
    lead_changes = ((EMOJIS[10], 0.3), *WITHOUT[1:])
    changed = replace(SIMPLE, words=tuple(replace(word, without_top=lead_changes) for word in SIMPLE.words))
    assert ", and the top emoji would be 😁." in render_word_markdown(changed, 4)


def test_a_one_word_message_has_nothing_left_without_its_word():
    alone = Explanation("wow", (WordScore("wow", 0, 3, 0.8, True, (0.4, 0.2, 0.1, 0.05, 0.05), ()),), TOP, "occlusion")
    lines = lines_after_message(render_word_markdown(alone, 0))
    assert lines[0] == "What **wow** does: 😷 +0.400  ·  😁 +0.200  ·  😖 +0.100  ·  😒 +0.050  ·  👊 +0.050"
    assert lines[1] == "Without **wow** nothing is left to read: each effect is the emoji's whole probability."
    assert len(lines) == 3  # no top five without it


def test_attention_and_picks_outside_the_explanation_are_refused():
    attention = Explanation("hi", (WordScore("hi", 0, 2, 1.0),), TOP, "attention")
    with pytest.raises(NotExplorable, match="occlusion"):
        render_emoji_markdown(attention, 39)
    with pytest.raises(NotExplorable, match="occlusion"):
        render_word_markdown(attention, 0)
    with pytest.raises(NotExplorable, match="not one of the top 5"):
        render_emoji_markdown(SIMPLE, 0)
    with pytest.raises(NotExplorable, match="no word 7"):
        render_word_markdown(SIMPLE, 7)


def effects_for(text: str, seed: int) -> list[tuple[float, ...]]:
    rng = random.Random(seed)
    return [tuple(rng.uniform(-0.3, 0.3) for _ in range(5)) for _ in re.finditer(r"\S+", text)]


@pytest.mark.parametrize("text", hostile_texts(120, seed=3))
def test_user_text_never_pings_links_or_formats_in_either_view(text):
    if not text.split():
        return
    explanation = explored(text, effects_for(text, len(text)))
    for markdown in (render_emoji_markdown(explanation, 10), render_word_markdown(explanation, 0)):
        assert unescape(message_part(markdown)) == text
        lines = lines_after_message(markdown)
        ours = set("*_-#+")  # our bold, underline and small print, and signs of our figures
        for line in lines:
            assert not set(unescaped_markdown_chars(line.removeprefix("-# "))) - ours, line
        assert "@everyone" not in markdown.replace("\\@everyone", "")


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("limit", [DISCORD_LIMIT, 600])
def test_long_messages_fit_the_limit_keeping_the_marked_words(seed, limit):
    text = long_hostile_text(seed)
    explanation = explored(text, effects_for(text, seed))
    for markdown, marked in (
        (render_emoji_markdown(explanation, 52, limit), raising(explanation, 2) + lowering(explanation, 2)),
        (render_word_markdown(explanation, 350, limit), [350]),
    ):
        assert len(markdown) <= limit
        message = message_part(markdown)
        assert ELLIPSIS in message
        for index in marked:  # every marked word is in the shortened message
            word = explanation.words[index]
            assert unescape(text[word.start : word.end]) in unescape(message)


def test_a_giant_word_is_cut_inside_in_the_word_view():
    text = "x" * 5000 + " day"
    explanation = explored(text, [(0.1, 0, 0, 0, 0), (0.2, 0, 0, 0, 0)])
    markdown = render_word_markdown(explanation, 0)
    assert len(markdown) <= DISCORD_LIMIT
    assert f"What **{'x' * 39}\\{ELLIPSIS}** does" in markdown  # the pasted blob is shortened in the lines


def test_influential_words_at_most_25_most_moving_in_text_order():
    text = " ".join(f"w{index}" for index in range(40))
    effects = [(0.01 * ((index * 7) % 40), -0.005 * (index % 3), 0, 0, 0) for index in range(40)]
    explanation = explored(text, effects)
    chosen = influential_words(explanation)
    assert len(chosen) == 25 and chosen == sorted(chosen)
    sizes = [sum(abs(e) for e in effect) for effect in effects]
    assert min(sizes[i] for i in chosen) >= max(sizes[i] for i in range(40) if i not in chosen)
    words = tuple(word if i % 2 else replace(word, exact=False) for i, word in enumerate(explanation.words))
    estimated = replace(explanation, words=words, window=16)
    assert all(index % 2 for index in influential_words(estimated))  # estimates are never offered


def test_an_approximate_explanation_ranks_the_exact_words_and_says_so():
    words = list(SIMPLE.words)
    words[4] = replace(words[4], exact=False)  # "day" was only estimated
    estimated = replace(SIMPLE, words=tuple(words), window=16)
    assert raising(estimated, 0) == [5]
    method = lines_after_message(render_emoji_markdown(estimated, 39))[-1]
    assert method.endswith("Exact; ranked among the 6 words scored exactly, the others were only estimated.")
    assert "only estimated" in lines_after_message(render_word_markdown(estimated, 4))[-1]


def test_terminal_views_use_ansi_and_keep_control_characters_out():
    text = "hi \x1b[31m day"
    explanation = explored(text, [(0.1, 0, 0, 0, 0), (-0.2, 0, 0, 0, 0), (0.3, 0, 0, 0, 0)])
    emoji = render_emoji_terminal(explanation, 39, ansi=True)
    assert "\x1b[31m" not in emoji and "\x1b[1mday\x1b[0m" in emoji and "\x1b[4m\ufffd[31m\x1b[0m" in emoji
    plain = render_emoji_terminal(explanation, 39, ansi=False)
    assert plain.splitlines()[0] == "**hi** __\ufffd[31m__ **day**" and "\x1b" not in plain
    word = render_word_terminal(explanation, 2, ansi=False)
    assert word.splitlines()[0] == "hi \ufffd[31m **day**" and word.splitlines()[-1].startswith("occlusion:")


@pytest.fixture(scope="module")
def engine(small_model_dir) -> Engine:
    return Engine.load(ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"))


@pytest.mark.parametrize("text", ["i love you so much !!", "why do you hate me , i'm so sad", "wow"])
def test_the_views_print_the_explanations_own_figures(engine, text):
    explanation = explain(engine, text)
    for position, (emoji, probability) in enumerate(explanation.top_emojis):
        lines = lines_after_message(render_emoji_markdown(explanation, emoji.index))
        assert lines[0].endswith(f"{probability:.1%}")
        for index in raising(explanation, position):
            word = explanation.words[index]
            assert f"**{word.word}** {word.effects[position]:+.3f}" in lines[1]
    for index, word in enumerate(explanation.words):
        lines = lines_after_message(render_word_markdown(explanation, index))
        for (emoji, _), effect in zip(explanation.top_emojis, word.effects):
            assert f"{emoji.reaction} {effect:+.3f}" in lines[0]
        if word.without_top:
            assert lines[2] == "Top five without it: " + "  ·  ".join(
                f"{emoji.reaction} {p:.1%}" for emoji, p in word.without_top
            )
