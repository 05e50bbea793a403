"""The page's answers: the same explanation as ``explain``, bad input as a notice, choices that carry over."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from bot.demo import page
from bot.demo.view import SCORE
from bot.explain import explain

#: What Gradio passes the page's handlers as ``request``: the page's session.
PAGE = SimpleNamespace(session_hash="page-1")


def test_a_text_is_explained_exactly_as_explain_does(engine):
    text = "i love you so much !!"
    explained = page.explain_text(engine, text)
    assert isinstance(explained, page.Explained)
    assert explained.explanation == explain(engine, text)
    assert explained.probabilities is None  # the top five are the explanation's own: no model run
    # Past five, the 64 probabilities behind the list agree with the explanation's own pass.
    explained = page.explain_text(engine, text, 6)
    top = [(emoji.index, p) for emoji, p in explained.explanation.top_emojis]
    assert [explained.probabilities[index] for index, _ in top] == pytest.approx([p for _, p in top], abs=1e-6)
    assert explained.probabilities.shape == (64,) and np.isclose(explained.probabilities.sum(), 1.0)


@pytest.mark.parametrize(
    ("text", "notice"),
    [
        ("", page.EMPTY),
        ("   \n\t ", page.EMPTY),
        ("a" * (page.MAX_TEXT_CHARS + 1), page.TOO_LONG),
        ("i love you " * 400, page.TOO_LONG),  # 4,400 characters
    ],
    ids=["empty", "blank", "4001-characters", "4400-characters"],
)
def test_bad_input_gets_a_notice(engine, text, notice):
    explained = page.explain_text(engine, text)
    assert explained == page.Notice(notice)
    answer = page.answer(explained, 5, SCORE, None)
    assert answer.words == f'<p class="wm-notice">{page.render.esc(notice)}</p>'
    assert (answer.emojis, answer.word, answer.reading, answer.word_choices) == ("", "", "", [])
    assert answer.lens_choices == [("score (all top emojis)", SCORE)] and answer.pick is None


def test_text_without_anything_to_read_gets_a_notice(engine):
    # U+180E (Mongolian vowel separator) is not blank to Python but the tokenizer reads nothing in it.
    assert page.explain_text(engine, "\u180e\u180e") == page.Notice(page.NOTHING_TO_READ)


def test_4000_characters_are_read_as_the_bot_reads_them(engine):
    text = ("what a day !! " * 300)[: page.MAX_TEXT_CHARS]
    explained = page.explain_text(engine, text)
    assert isinstance(explained, page.Explained)
    reading = explained.explanation.reading
    assert reading == engine.read(text) and reading.truncated and len(reading.tokens) == engine.max_tokens
    answer = page.answer(explained, 5, SCORE, None)
    assert "the model reads only its first 40 of" in answer.reading
    assert "✂ the model stops reading here" in answer.words


def test_emoji_only_text_is_explained_and_the_reading_says_how_little_is_known(engine):
    explained = page.explain_text(engine, "😂😂😂 🔥")
    assert isinstance(explained, page.Explained)
    reading = explained.explanation.reading
    assert reading.known_share < 0.5
    assert "The model knows only" in page.answer(explained, 5, SCORE, None).reading


def test_control_characters_and_markup_are_read_as_typed_and_shown_inert(engine):
    text = "i love\x1b[31m <b>you</b>\x00 !!"
    explained = page.explain_text(engine, text)
    assert explained.explanation == explain(engine, text)
    answer = page.answer(explained, 5, SCORE, None)
    assert "<b>" not in answer.words and "\x1b" not in answer.words and "\x00" not in answer.words


def test_the_model_failing_is_a_notice_not_a_traceback(engine, monkeypatch):
    from bot.demo import app

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(page, "explain_steps", broken)
    demo = app.build_demo(engine)
    on_text = next(fn.fn for fn in demo.fns.values() if fn.name == "on_text")
    outputs = asyncio.run(on_text("i love you", 5, SCORE, None, PAGE))
    assert outputs[0] == page.Notice("The model failed on this text; please try again.")
    assert "failed" in outputs[1]


def test_the_lens_and_the_picked_word_carry_over_while_they_exist(engine):
    long = page.explain_text(engine, "i love you so much !!")
    short = page.explain_text(engine, "hate")
    answer = page.answer(long, 5, 3, 4)
    assert (answer.lens, answer.pick) == (3, 4)
    assert [value for _, value in answer.lens_choices] == [SCORE, 0, 1, 2, 3, 4]
    assert [label for label, _ in answer.word_choices] == ["1. i", "2. love", "3. you", "4. so", "5. much", "6. !!"]
    assert page.answer(short, 5, 3, 4).pick is None  # "hate" has one word
    assert page.answer(short, 5, 3, 0).lens == 3
    assert page.answer(long, 5, 9, -1) == page.answer(long, 5, SCORE, None)  # out of range: defaults


@pytest.mark.parametrize(
    ("given", "k"),
    [(5, 5), (64, 64), (65, 64), (0, 1), (-3, 1), (7.6, 8), ("12", 12), ("x", 5), (None, 5), (float("nan"), 5)],
)
def test_top_k_from_a_client_is_kept_within_1_to_64(given, k):
    assert page.clamp_top_k(given) == k


def test_views_of_a_kept_explanation_need_no_model_run(engine, monkeypatch):
    explained = page.explain_text(engine, "you are so stupid lol", 12)
    monkeypatch.setattr(engine.model, "predict", None)  # any model run would fail now
    assert page.words_html(explained, 2).count('class="wm-w"') == 5
    assert page.emojis_html(explained, 12).count("<tr") == 12
    assert 'data-index="3"' in page.word_html(explained, 3)
    assert page.word_html(explained, None).startswith('<p class="wm-hint">')
    assert page.words_html(None, SCORE) == page.render.notice(page.EMPTY)


def test_explaining_in_slices_gives_the_same_answer(engine):
    whole = page.explain_text(engine, "i love you so much !!")
    sliced = page.finish(page.explain_text_steps(engine, "i love you so much !!"))
    assert whole.explanation == sliced.explanation
    assert np.array_equal(whole.probabilities, sliced.probabilities)


def test_a_cancelled_explanation_stops_between_slices(engine, monkeypatch):
    """A cancelled event (Gradio's /cancel route cancels the task running it) stops after the
    slice in progress and its generator is closed: nothing keeps running for it."""
    import threading

    from bot.demo import app

    started, release = threading.Event(), threading.Event()
    slices, closed = [], []

    def slow_steps(engine, text):
        try:
            for index in range(100):
                slices.append(index)
                started.set()
                release.wait(5)
                yield index / 100
        finally:
            closed.append(True)
        raise AssertionError("never finishes")

    monkeypatch.setattr(page, "explain_steps", slow_steps)
    on_text = next(fn.fn for fn in app.build_demo(engine).fns.values() if fn.name == "on_text")

    async def typed_then_replaced():
        task = asyncio.create_task(on_text("i love you", 5, SCORE, None, PAGE))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        release.set()  # the slice in progress ends
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(typed_then_replaced())
    assert closed == [True]
    assert len(slices) == 1  # no slice ran after the cancel


def handlers(engine):
    from bot.demo import app

    functions = {fn.name: fn.fn for fn in app.build_demo(engine).fns.values()}
    return functions["on_typed"], functions["on_text"]


def test_a_request_explains_the_newest_text_typed_on_its_page(engine, monkeypatch):
    """The browser sends one text at a time; the server hears of every change at once
    (``on_typed``), so a request explains the page's newest text when its turn comes, and the
    one the browser held back meanwhile then finds that text shown and does nothing."""
    import gradio as gr

    explained = []
    real = page.explain_steps

    def counted(engine, text):
        explained.append(text)
        return real(engine, text)

    monkeypatch.setattr(page, "explain_steps", counted)
    on_typed, on_text = handlers(engine)
    for typed in ("i", "i love", "i love you"):  # typed while the request for "i" waited its turn
        on_typed(typed, PAGE)
    answer = asyncio.run(on_text("i", 5, SCORE, None, PAGE))
    assert answer[0].explanation == explain(engine, "i love you") and explained == ["i love you"]
    held_back = asyncio.run(on_text("i love you", 5, SCORE, None, PAGE))
    assert held_back == tuple(gr.skip() for _ in range(7)) and explained == ["i love you"]
    # Another page, and an API client that never typed, get what they sent, every time.
    client = SimpleNamespace(session_hash="page-2")
    for _ in range(2):
        assert asyncio.run(on_text("hate", 5, SCORE, None, client))[0].explanation == explain(engine, "hate")
    on_typed("i love", PAGE)  # typed back: explained again
    assert asyncio.run(on_text("i love you", 5, SCORE, None, PAGE))[0].explanation == explain(engine, "i love")


def test_a_failed_explanation_is_tried_again(engine, monkeypatch):
    from bot.demo import app

    on_typed, on_text = handlers(engine)
    real = page.explain_steps
    monkeypatch.setattr(page, "explain_steps", lambda *args: (_ for _ in ()).throw(RuntimeError("boom")))
    on_typed("i love you", PAGE)
    assert asyncio.run(on_text("i love you", 5, SCORE, None, PAGE))[0] is app.FAILED
    monkeypatch.setattr(page, "explain_steps", real)
    assert asyncio.run(on_text("i love you", 5, SCORE, None, PAGE))[0].explanation == explain(engine, "i love you")


def test_newest_texts_are_kept_for_a_bounded_number_of_pages():
    from bot.demo.app import NewestTexts

    pages = NewestTexts(capacity=2)
    for session in ("a", "b", "c"):
        pages.note(session, f"text of {session}")
    assert pages.newest("a", "sent") == "sent"  # forgotten: what the request carries
    assert pages.newest("b", "sent") == "text of b"
    assert not pages.shown("b", "text of b")
    pages.answered("b", "text of b")
    assert pages.shown("b", "text of b") and not pages.shown("c", "text of b")
    pages.answered("api", "sent")  # never typed: never taken as shown
    assert not pages.shown("api", "sent")
    assert pages.newest(None, "sent") == "sent" and not pages.shown(None, "sent")


def test_a_top_k_past_five_computes_the_probabilities_once(engine, monkeypatch):
    from bot.demo import app

    on_top_k = next(fn.fn for fn in app.build_demo(engine).fns.values() if fn.name == "on_top_k")
    explained = page.explain_text(engine, "you are so stupid lol")
    kept, html = on_top_k(explained, 5)
    assert kept is explained and html.count("<tr") == 5
    kept, html = on_top_k(explained, 9)
    assert html.count("<tr") == 9 and kept.probabilities.shape == (64,)
    monkeypatch.setattr(engine.model, "predict", None)  # kept: no second model run
    assert on_top_k(kept, 64)[1].count("<tr") == 64
    assert on_top_k(None, 9) == (None, "")
