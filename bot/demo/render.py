"""The demo page's HTML: the shaded text with its legend, the emoji list, a word's view, the reading.

Safety: everything that comes from the text (words, gaps, names) goes through ``esc``: control
characters become U+FFFD (``bot.explain.render.printable``), and every character HTML or a
template could read as markup (``& < > " '``, and `` ` $ { } \\`` which Gradio's JavaScript and
Handlebars templates would read) becomes a numeric character reference. Markup typed into the
box is therefore shown as text, never run: the page's own tags are the only tags.

The numbers are on the page, not colour alone: every shaded word carries its number under it,
the legend gives the scale, and ``data-*`` attributes carry the same numbers for tools.
"""

from __future__ import annotations

from bot.demo.view import EmojiLine, ReadingView, Shading, WordView
from bot.explain.render import format_probability, printable

#: Longest word shown in a label (the word pick); a pasted blob is one "word".
LABEL_CHARS = 40
#: Shades: warm for words that raise the emojis under the lens, cool for words that lower them.
RAISE_RGB = (234, 88, 12)
LOWER_RGB = (37, 99, 235)
#: Opacity of the strongest shade (the words stay readable on it).
MAX_ALPHA = 0.75
#: Shown for a token whose text is blank: a line break the model reads as a word, or other space.
LINE_BREAK = "↵"
BLANK = "␣"

_REFERENCES = {char: f"&#{ord(char)};" for char in "&<>\"'`${}\\"}
_TABLE = str.maketrans(_REFERENCES)

CSS = """
.wm-text { color: #111827; background: #f9fafb; border-radius: 8px; padding: 12px; line-height: 2.6;
  white-space: pre-wrap; overflow-wrap: anywhere; font-size: 1.1em; }
.wm-w { display: inline-flex; flex-direction: column; align-items: center; border-radius: 4px;
  padding: 0 2px; line-height: 1.25; vertical-align: middle; unicode-bidi: isolate; }
.wm-s { font-size: 0.62em; font-variant-numeric: tabular-nums; color: #374151; }
.wm-w.wm-estimate .wm-s::before { content: "≈"; }
.wm-cut { color: #b91c1c; font-size: 0.8em; font-weight: 600; white-space: nowrap; }
.wm-unread { color: #9ca3af; }
.wm-legend { display: flex; align-items: center; gap: 8px; flex-wrap: wrap; margin: 4px 0 8px; }
.wm-bar { height: 12px; width: 220px; border-radius: 6px; border: 1px solid #d1d5db;
  background: linear-gradient(to right, rgba(37, 99, 235, 0.75), rgba(255, 255, 255, 0), rgba(234, 88, 12, 0.75)); }
.wm-scale { font-variant-numeric: tabular-nums; }
.wm-lens { width: 100%; font-size: 0.9em; opacity: 0.8; }
.wm-table { border-collapse: collapse; width: 100%; border: none; margin: 4px 0; }
.wm-table td, .wm-table th { padding: 2px 8px; text-align: left; border: none; border-bottom: 1px solid #e5e7eb; }
.wm-table .wm-num { text-align: right; font-variant-numeric: tabular-nums; }
.wm-p-bar { height: 8px; border-radius: 4px; background: #f59e0b; min-width: 1px; }
.wm-notice, .wm-hint, .wm-reading { margin: 4px 0; }
.wm-hint { opacity: 0.75; }
"""


def esc(text: str) -> str:
    """``text`` as inert HTML: control characters shown as U+FFFD, markup as character references."""
    return printable(text).translate(_TABLE)


def written(text: str, start: int, end: int) -> str:
    """A token as written in the text (a sign for it if that is blank), shortened to ``LABEL_CHARS``."""
    shown = text[start:end]
    if not shown.strip():
        shown = LINE_BREAK if "\n" in shown else BLANK
    shown = printable(shown)
    return shown if len(shown) <= LABEL_CHARS else shown[: LABEL_CHARS - 1] + "…"


def plain_percent(probability: float) -> str:
    return format_probability(probability)


def colour(shade: float) -> str:
    """The background of a word whose shade is ``shade`` in [-1, 1]."""
    red, green, blue = RAISE_RGB if shade >= 0 else LOWER_RGB
    return f"rgba({red}, {green}, {blue}, {round(abs(shade) * MAX_ALPHA, 3)})"


def notice(message: str) -> str:
    return f'<p class="wm-notice">{esc(message)}</p>'


def hint(message: str) -> str:
    return f'<p class="wm-hint">{esc(message)}</p>'


def legend(shading: Shading) -> str:
    scale = shading.scale_label
    return (
        f'<div class="wm-legend" data-lens="{shading.lens}" data-scale="{scale}">'
        f'<span class="wm-scale">lowers −{scale}</span><span class="wm-bar" role="img" '
        f'aria-label="from blue, lowers by {scale}, through white, no effect, to orange, raises by {scale}"></span>'
        f'<span class="wm-scale">+{scale} raises</span>'
        f'<span class="wm-lens">{esc(shading.title)}</span></div>'
    )


def shaded_text(text: str, shading: Shading, reading: ReadingView | None) -> str:
    """The text as typed, every token the model read shaded, its number under it; the rest of a
    long text after a cut marker, unshaded."""
    out = [legend(shading), f'<div class="wm-text" data-lens="{shading.lens}">']
    cursor = 0
    for word in shading.words:
        start = max(word.start, cursor)
        out.append(esc(text[cursor:start]))
        shown = text[start : word.end]
        blank = not shown.strip()
        classes = "wm-w" if word.exact else "wm-w wm-estimate"
        out.append(
            f'<span class="{classes}" data-index="{word.index}" data-value="{word.label}" '
            f'data-shade="{word.shade:.3f}" style="background-color: {colour(word.shade)}" '
            f'title="{esc(written(text, word.start, word.end))} {word.label}">'
            + (
                f'<span class="wm-t wm-blank">{esc(written(text, start, word.end))}</span>'
                if blank
                else f'<span class="wm-t">{esc(shown)}</span>'
            )
            + f'<span class="wm-s">{word.label}</span></span>'
        )
        if blank:  # the whitespace itself, after the glyph that stands for it
            out.append(esc(shown))
        cursor = max(cursor, word.end)
    if reading is not None and reading.cut_at is not None:
        out.append(
            f'<span class="wm-cut" title="model.max_tokens">✂ the model stops reading here '
            f"({reading.read} of {reading.total} words and symbols)</span>"
        )
        out.append(f'<span class="wm-unread">{esc(text[cursor:])}</span>')
    else:
        out.append(esc(text[cursor:]))
    out.append("</div>")
    return "".join(out)


def emoji_list(lines: tuple[EmojiLine, ...]) -> str:
    """The top-k emojis with their probabilities, most likely first."""
    rows = "".join(
        f'<tr data-rank="{rank}" data-index="{line.emoji.index}"><td class="wm-num">{rank}</td>'
        f'<td class="wm-e">{esc(line.emoji.reaction)}</td><td>{esc(line.emoji.name)}</td>'
        f'<td class="wm-num wm-percent">{line.percent}</td>'
        f'<td style="width: 40%"><div class="wm-p-bar" style="width: {min(line.probability, 1.0) * 100:.1f}%"></div></td></tr>'
        for rank, line in enumerate(lines, start=1)
    )
    return f'<table class="wm-table wm-emojis"><tbody>{rows}</tbody></table>'


def word(text: str, view: WordView) -> str:
    """A picked word: its score, its effect on each top emoji, the top five without it."""
    shown = esc(written(text, view.start, view.end))
    estimate = "" if view.exact else " (estimated)"
    parts = [
        f'<div class="wm-word" data-index="{view.index}">'
        f'<p>Word {view.index + 1}, <b class="wm-picked">{shown}</b>: score '
        f'<span class="wm-word-score">{view.score_label}</span>{estimate}</p>'
    ]
    if view.effects is not None:
        rows = "".join(
            f'<tr data-index="{line.emoji.index}"><td class="wm-e">{esc(line.emoji.reaction)}</td>'
            f'<td>{esc(line.emoji.name)}</td><td class="wm-num wm-percent">{line.percent}</td>'
            f'<td class="wm-num wm-effect">{line.effect_label}</td></tr>'
            for line in view.effects
        )
        parts.append(
            "<p>Its effect on each top emoji (the emoji's probability with the word minus without it):</p>"
            '<table class="wm-table wm-effects"><thead><tr><th></th><th>emoji</th>'
            '<th class="wm-num">probability</th><th class="wm-num">effect</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    if view.without is not None:
        if view.without:
            rows = "".join(
                f'<tr data-index="{line.emoji.index}"><td class="wm-num">{rank}</td>'
                f'<td class="wm-e">{esc(line.emoji.reaction)}</td><td>{esc(line.emoji.name)}</td>'
                f'<td class="wm-num wm-percent">{line.percent}</td></tr>'
                for rank, line in enumerate(view.without, start=1)
            )
            parts.append(
                f'<p>The top five without it:</p><table class="wm-table wm-without"><tbody>{rows}</tbody></table>'
            )
        else:
            parts.append('<p class="wm-without-none">Without its only word, nothing is left to predict.</p>')
    parts.append("</div>")
    return "".join(parts)


def reading(text: str, view: ReadingView) -> str:
    """The share of known words, and where the ``model.max_tokens`` cut fell."""
    if view.words:
        only = "only " if view.share < 0.5 else ""
        known = (
            f"The model knows {only}{view.known} of {view.words} words here "
            f'(<span class="wm-known">{view.share_label}</span>)'
        )
        known += "; it reads the others as one unknown word." if view.known < view.words else "."
    else:
        known = "No words here, only mentions, links, numbers or line breaks."
    if view.cut_at is None:
        cut = f"It reads all {view.total} words and symbols."
    else:
        last = esc(text[: view.cut_at].split()[-1][-LABEL_CHARS:]) if text[: view.cut_at].split() else ""
        cut = (
            f"Long message: the model reads only its first {view.read} of {view.total} words and symbols "
            f"(model.max_tokens); the cut falls after “{last}”, at character {view.cut_at} of {len(text)}."
        )
    return f'<p class="wm-reading">{known} {cut}</p>'
