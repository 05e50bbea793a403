"""Exploring an explanation: why one emoji, and what one word does (``/why``'s menus and
``whymoji why --emoji / --word``). Pure text, like ``bot.explain.render``, whose escaping,
shortening and small print these views share.

- **One emoji** (``render_emoji_markdown``): the words that raise it most, in bold with their
  signed effects, and those that lower it most, underlined (``__``, never bold) with theirs; the
  same rule picks them as picks the bold words of the whole view (``bot.explain.highlight``:
  at most three, each at least half a percentage point and a fifth of the best), applied to the
  word's effect on that one emoji. The method line names the emoji.
- **One word** (``render_word_markdown``): its signed effect on each of the top emojis, their
  probabilities with and without it ("Without **day**: 😷 26.1% → 4.5% …, and the top emoji
  would be 😂"), and the top five without it.

Every figure comes from ``WordScore.effects`` and ``WordScore.without_top`` (exact: the
leave-one-out pass already run). Only occlusion has them (``NotExplorable`` otherwise). When
some words were only estimated (a long message, ``bot.explain.shown``), the emoji view ranks the
words scored exactly and says so, and ``influential_words`` offers only those.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.explain.explanation import Explanation, WordScore
from bot.explain.highlight import highlighted_indices
from bot.explain.render import (
    ANSI_BOLD,
    ANSI_RESET,
    ANSI_UNDERLINE,
    BOLD,
    DISCORD_LIMIT,
    EXACTNESS,
    UNDERLINE,
    boldable,
    escape,
    format_probability,
    format_score,
    notes,
    printable,
    render_with_footer,
    score_word,
    terminal_message,
)

#: Most words a word menu offers (Discord's limit of options per select menu).
MENU_WORDS = 25
#: Said instead of a list when no word clearly moves the emoji one way.
NOTHING_STANDS_OUT = "no single word stands out."
SEPARATOR = "  ·  "


class NotExplorable(ValueError):
    """The explanation has no per-emoji effects (attention), or the pick is not in it."""


@dataclass(frozen=True)
class _Style:
    """How a view writes the user's words and its marks: markdown (escaped) or a terminal."""

    word: Callable[[str], str]
    bold: tuple[str, str]
    underline: tuple[str, str]
    note: str  # the small print's prefix

    def bolded(self, text: str) -> str:
        return self.bold[0] + self.word(text) + self.bold[1]

    def underlined(self, text: str) -> str:
        return self.underline[0] + self.word(text) + self.underline[1]


_MARKDOWN = _Style(escape, (BOLD, BOLD), (UNDERLINE, UNDERLINE), "-# ")


def _terminal(ansi: bool) -> _Style:
    if ansi:
        return _Style(printable, (ANSI_BOLD, ANSI_RESET), (ANSI_UNDERLINE, ANSI_RESET), "")
    return _Style(printable, (BOLD, BOLD), (UNDERLINE, UNDERLINE), "")


def _effects(explanation: Explanation) -> list[tuple[float, ...]]:
    effects = [word.effects for word in explanation.words]
    if any(effect is None for effect in effects):
        raise NotExplorable(f"{explanation.method} does not measure each emoji; use occlusion")
    return [effect for effect in effects if effect is not None]


def emoji_position(explanation: Explanation, emoji_index: int) -> int:
    """Where class ``emoji_index`` is among the explanation's top emojis (``NotExplorable`` if absent)."""
    for position, (emoji, _) in enumerate(explanation.top_emojis):
        if emoji.index == emoji_index:
            return position
    raise NotExplorable(f"emoji class {emoji_index} is not one of the top {len(explanation.top_emojis)}")


def raising(explanation: Explanation, position: int) -> list[int]:
    """Indices of the words that raise the top emoji at ``position`` most, best first."""
    effects = _effects(explanation)
    return highlighted_indices(
        [effect[position] if word.exact else -math.inf for word, effect in zip(explanation.words, effects)]
    )


def lowering(explanation: Explanation, position: int) -> list[int]:
    """Indices of the words that lower the top emoji at ``position`` most, strongest first."""
    effects = _effects(explanation)
    return highlighted_indices(
        [-effect[position] if word.exact else -math.inf for word, effect in zip(explanation.words, effects)]
    )


def influence(word: WordScore) -> float:
    """How much a word moves the top emojis, whichever way: the sum of its effects' sizes (its
    score's size for a method without effects)."""
    if word.effects is None:
        return abs(word.score)
    return sum(abs(effect) for effect in word.effects)


def influential_words(explanation: Explanation, count: int = MENU_WORDS) -> list[int]:
    """Indices of the ``count`` most influential exactly scored words, in text order."""
    exact = [index for index, word in enumerate(explanation.words) if word.exact]
    ranked = sorted(exact, key=lambda index: influence(explanation.words[index]), reverse=True)
    return sorted(ranked[:count])


def word_at(explanation: Explanation, word_index: int) -> WordScore:
    if not 0 <= word_index < len(explanation.words):
        raise NotExplorable(f"there is no word {word_index}: the model read {len(explanation.words)}")
    _effects(explanation)
    return explanation.words[word_index]


def _exactness(explanation: Explanation) -> str:
    if not explanation.approximate:
        return EXACTNESS[explanation.scoring]
    exact = sum(word.exact for word in explanation.words)
    return f"Exact; ranked among the {exact} words scored exactly, the others were only estimated."


# -- one emoji ----------------------------------------------------------------------------


def _emoji_lines(explanation: Explanation, position: int, style: _Style) -> tuple[list[int], list[int], list[str]]:
    emoji, probability = explanation.top_emojis[position]
    up, down = raising(explanation, position), lowering(explanation, position)
    text, words = explanation.text, explanation.words

    def listed(indices: list[int], mark: Callable[[str], str]) -> str:
        if not indices:
            return NOTHING_STANDS_OUT
        return SEPARATOR.join(
            f"{mark(score_word(text, words[index]))} {format_score(_effect(words[index], position))}"
            for index in indices
        )

    method = (
        f"occlusion for {emoji.reaction}: how much {emoji.reaction}'s probability drops when the word is left "
        f"out; below zero, it rises. {_exactness(explanation)}"
    )
    lines = [
        f"{emoji.reaction} {emoji.name.replace('_', ' ')}: {format_probability(probability)}",
        f"Raise it most: {listed(up, style.bolded)}",
        f"Lower it most: {listed(down, style.underlined)}",
    ]
    lines += [style.note + note for note in notes(explanation, method)]
    return up, down, lines


def _effect(word: WordScore, position: int) -> float:
    assert word.effects is not None  # checked by _effects
    return word.effects[position]


def _spans(explanation: Explanation, indices: Sequence[int]) -> list[tuple[int, int]]:
    words = [explanation.words[index] for index in indices]
    return [(word.start, word.end) for word in words if boldable(explanation.text, word)]


def render_emoji_markdown(explanation: Explanation, emoji_index: int, limit: int = DISCORD_LIMIT) -> str:
    """Why one of the top emojis: the words that raise it most (bold) and lower it most
    (underlined), with their signed effects; at most ``limit`` characters, escaped as ``/why``."""
    up, down, lines = _emoji_lines(explanation, emoji_position(explanation, emoji_index), _MARKDOWN)
    return render_with_footer(explanation.text, _spans(explanation, up), _spans(explanation, down), lines, limit)


def render_emoji_terminal(explanation: Explanation, emoji_index: int, ansi: bool) -> str:
    """``render_emoji_markdown`` for a terminal (``whymoji why --emoji``)."""
    style = _terminal(ansi)
    up, down, lines = _emoji_lines(explanation, emoji_position(explanation, emoji_index), style)
    message = terminal_message(explanation.text, _spans(explanation, up), _spans(explanation, down), ansi)
    return "\n".join([message, "", *lines])


# -- one word -----------------------------------------------------------------------------


def _word_lines(explanation: Explanation, word_index: int, style: _Style) -> list[str]:
    word = word_at(explanation, word_index)
    assert word.effects is not None and word.without_top is not None  # checked by word_at
    written = style.bolded(score_word(explanation.text, word))
    top = explanation.top_emojis
    lines = [
        f"What {written} does: "
        + SEPARATOR.join(f"{emoji.reaction} {format_score(effect)}" for (emoji, _), effect in zip(top, word.effects))
    ]
    if not word.without_top:  # a one-word message: without it there is nothing to predict
        lines.append(f"Without {written} nothing is left to read: each effect is the emoji's whole probability.")
    else:
        changes = SEPARATOR.join(
            f"{emoji.reaction} {format_probability(probability)} → {format_probability(max(probability - effect, 0.0))}"
            for (emoji, probability), effect in zip(top, word.effects)
        )
        leader = word.without_top[0][0]
        outcome = (
            f"{leader.reaction} stays on top" if leader == top[0][0] else f"the top emoji would be {leader.reaction}"
        )
        lines.append(f"Without {written}: {changes}, and {outcome}.")
        lines.append(
            "Top five without it: "
            + SEPARATOR.join(
                f"{emoji.reaction} {format_probability(probability)}" for emoji, probability in word.without_top
            )
        )
    method = (
        "occlusion: a word's effect on an emoji is the emoji's probability with the word minus without it."
        if word.exact
        else "occlusion: this word was only estimated (a long message), so these figures are estimates."
    )
    if word.exact:
        method += " " + _exactness(explanation)
    return lines + [style.note + note for note in notes(explanation, method)]


def render_word_markdown(explanation: Explanation, word_index: int, limit: int = DISCORD_LIMIT) -> str:
    """What one word does: its signed effect on each top emoji, their probabilities without it,
    and the top five without it; the word in bold; at most ``limit`` characters."""
    lines = _word_lines(explanation, word_index, _MARKDOWN)
    return render_with_footer(explanation.text, _spans(explanation, [word_index]), (), lines, limit)


def render_word_terminal(explanation: Explanation, word_index: int, ansi: bool) -> str:
    """``render_word_markdown`` for a terminal (``whymoji why --word``)."""
    lines = _word_lines(explanation, word_index, _terminal(ansi))
    message = terminal_message(explanation.text, _spans(explanation, [word_index]), (), ansi)
    return "\n".join([message, "", *lines])
