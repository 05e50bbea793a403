"""The page's HTML: markup typed into the box is text, never tags; the numbers are on the page."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from bot.demo import render
from bot.demo.view import reading_view, shading, top_k, word_view
from bot.explain import explain
from bot.explain.render import format_probability, format_score, printable

#: Every tag the page's HTML may contain: ours. Anything else came from the text.
OUR_TAGS = {"div", "span", "p", "b", "table", "thead", "tbody", "tr", "th", "td"}
#: Attributes ours carry; an event handler (onerror, onclick) or a link would be the text's.
OUR_ATTRIBUTES = {"class", "style", "title", "role", "aria-label"}

ATTACKS = (
    '<img src=x onerror="window.pwned=1">',
    "<script>window.pwned=2</script> hi",
    "${window.pwned=3} {{constructor.constructor('window.pwned=4')()}}",
    "`${alert(5)}` \\u003cb\\u003e &amp; &lt;b&gt; \"quoted\" 'single'",
    "</div></span><div onclick=alert(6)>x</div>",
    '<a href="javascript:alert(7)">link</a> <svg/onload=alert(8)> <style>*{display:none}</style>',
)
CONTROL = "bell\x07 escape\x1b[31m red nul\x00 del\x7f tab\tnew\nline"


class Page(HTMLParser):
    """The tags, attributes and text of a piece of HTML, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []  # (classes of the open spans, text)
        self._classes: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._classes.append(dict(attrs).get("class") or "")

    def handle_endtag(self, tag):
        self._classes.pop()

    def handle_data(self, data):
        self.texts.append((tuple(self._classes), data))


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


def assert_only_our_markup(html: str) -> Page:
    page = parse(html)
    for tag, attributes in page.tags:
        assert tag in OUR_TAGS, f"<{tag}> came from the text"
        assert set(attributes) <= OUR_ATTRIBUTES | {a for a in attributes if a.startswith("data-")}, attributes
    return page


def shown_text(page: Page) -> str:
    """The text of the shaded area without our additions (the numbers under the words, the cut):
    the typed text."""
    ours = {"wm-s", "wm-cut", "wm-blank"}
    return "".join(
        text for classes, text in page.texts if "wm-text" in classes and not any(ours & set(c.split()) for c in classes)
    )


@pytest.mark.parametrize("text", [*ATTACKS, CONTROL])
def test_typed_markup_is_shown_as_text_never_as_tags(engine, text):
    explanation = explain(engine, text)
    html = render.shaded_text(text, shading(explanation), reading_view(explanation))
    page = assert_only_our_markup(html)
    assert shown_text(page) == printable(text)  # every character shown, as typed (controls as U+FFFD)
    # Nothing that Gradio's templates or the browser could read as code is left literal in the text.
    body = html[html.index('<div class="wm-text"') :]
    for literal in ("${", "{{", "`", "\\"):
        assert literal not in body


@pytest.mark.parametrize("text", [*ATTACKS, CONTROL])
def test_word_view_emoji_list_and_reading_escape_the_text_too(engine, short_engine, text):
    for used in (engine, short_engine):
        explanation = explain(used, text)
        pieces = [render.emoji_list(top_k(explanation, None, 5)), render.reading(text, reading_view(explanation))]
        pieces += [render.word(text, word_view(explanation, index)) for index in range(len(explanation.words))]
        for piece in pieces:
            assert_only_our_markup(piece)
            for literal in ("${", "{{", "`", "\\"):
                assert literal not in piece


def test_esc_turns_every_markup_character_into_a_reference():
    assert render.esc("<b>&\"'`${}\\") == "&#60;b&#62;&#38;&#34;&#39;&#96;&#36;&#123;&#125;&#92;"
    assert render.esc("a\x1bb\nc\td") == "a\ufffdb\nc\td"


def test_every_word_carries_its_number_and_shade(engine):
    text = "i love you so much !!"
    explanation = explain(engine, text)
    shaded = shading(explanation, 2)
    page = parse(render.shaded_text(text, shaded, reading_view(explanation)))
    words = [attributes for tag, attributes in page.tags if attributes.get("class", "").startswith("wm-w")]
    assert [w["data-value"] for w in words] == [format_score(w.effects[2]) for w in explanation.words]
    assert [float(w["data-shade"]) for w in words] == pytest.approx([w.shade for w in shaded.words], abs=5e-4)
    assert [w["style"] for w in words] == [f"background-color: {render.colour(w.shade)}" for w in shaded.words]
    numbers = [text for classes, text in page.texts if classes and "wm-s" in classes[-1].split()]
    assert numbers == [format_score(w.effects[2]) for w in explanation.words]
    legend = next(attributes for tag, attributes in page.tags if attributes.get("class") == "wm-legend")
    assert legend["data-scale"] == format_score(shaded.scale).lstrip("+")


def test_colour_is_warm_for_raising_cool_for_lowering_and_clear_at_zero():
    assert render.colour(1.0) == "rgba(234, 88, 12, 0.75)"
    assert render.colour(-0.5) == "rgba(37, 99, 235, 0.375)"
    assert render.colour(0.0).endswith(", 0.0)")


def test_the_cut_is_marked_and_the_unread_rest_shown_unshaded(short_engine):
    text = "i love you so much zzyzx !! and <b>the rest</b> is never read"
    explanation = explain(short_engine, text)
    page = parse(render.shaded_text(text, shading(explanation), reading_view(explanation)))
    cut = [t for classes, t in page.texts if classes and classes[-1] == "wm-cut"]
    assert cut == ["✂ the model stops reading here (6 of 20 words and symbols)"]
    unread = "".join(t for classes, t in page.texts if classes and classes[-1] == "wm-unread")
    assert unread == text[text.index("zzyzx") + 5 :]
    reading = parse(render.reading(text, reading_view(explanation)))
    said = "".join(t for _, t in reading.texts)
    assert "the model reads only its first 6 of 20 words and symbols" in said
    assert f"at character {text.index('zzyzx') + 5} of {len(text)}" in said


def test_emoji_list_and_word_view_print_probabilities_and_effects_as_why_does(engine):
    explanation = explain(engine, "you are so stupid lol")
    lines = top_k(explanation, None, 5)
    page = parse(render.emoji_list(lines))
    assert [t for classes, t in page.texts if "wm-percent" in classes[-1]] == [
        format_probability(p) for _, p in explanation.top_emojis
    ]
    view = word_view(explanation, 3)
    page = parse(render.word("you are so stupid lol", view))
    texts = [(classes[-1], t) for classes, t in page.texts if classes]
    assert [t for c, t in texts if "wm-effect" in c] == [format_score(e) for e in explanation.words[3].effects]
    assert [t for c, t in texts if c == "wm-picked"] == ["stupid"]
    assert [t for c, t in texts if c == "wm-word-score"] == [format_score(explanation.words[3].score)]
