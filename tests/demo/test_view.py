"""What the page is given, checked against ``explain``: scores, shades, the emoji lens, the word
pick, the top-k list and the reading."""

from __future__ import annotations

import numpy as np
import pytest

from bot.deepmoji.emojis import top_emojis
from bot.demo.view import (
    MAX_TOP_K,
    SCORE,
    lenses,
    reading_view,
    shading,
    top_k,
    word_view,
)
from bot.explain import explain
from bot.explain.render import format_probability, format_score

TEXTS = ("i love you so much !!", "you are so stupid lol", "hate", "what a day :( sorry", "happy happy happy ?")


@pytest.mark.parametrize("text", TEXTS)
def test_score_lens_shades_every_word_by_its_explained_score(engine, text):
    explanation = explain(engine, text)
    shaded = shading(explanation)
    assert shaded.lens == SCORE
    assert [w.value for w in shaded.words] == [w.score for w in explanation.words]
    assert [(w.word, w.start, w.end) for w in shaded.words] == [(w.word, w.start, w.end) for w in explanation.words]
    assert [w.label for w in shaded.words] == [format_score(w.score) for w in explanation.words]
    scale = max(abs(w.score) for w in explanation.words)
    assert shaded.scale == scale
    assert [w.shade for w in shaded.words] == [w.score / scale for w in explanation.words]
    assert max(abs(w.shade) for w in shaded.words) == 1.0  # the strongest word is fully shaded
    assert all(np.sign(w.shade) == np.sign(w.value) for w in shaded.words)


@pytest.mark.parametrize("text", TEXTS)
def test_each_top_emoji_reshades_the_words_by_their_effect_on_it(engine, text):
    explanation = explain(engine, text)
    assert lenses(explanation) == [SCORE, 0, 1, 2, 3, 4]
    for rank, (emoji, probability) in enumerate(explanation.top_emojis):
        shaded = shading(explanation, rank)
        assert [w.value for w in shaded.words] == [w.effects[rank] for w in explanation.words]
        assert shaded.scale == max(abs(w.effects[rank]) for w in explanation.words)
        assert emoji.reaction in shaded.title and format_probability(probability) in shaded.title
    # The effects add up to the score: the lenses are one quantity split by emoji.
    for index, word in enumerate(explanation.words):
        assert sum(shading(explanation, rank).words[index].value for rank in range(5)) == pytest.approx(word.score)


def test_a_lens_the_explanation_lacks_is_refused(engine):
    explanation = explain(engine, "i love you")
    with pytest.raises(ValueError, match="no lens 5"):
        shading(explanation, 5)
    attention = explain(engine, "i love you", method="attention")  # leaves no word out: no effects
    assert lenses(attention) == [SCORE]


@pytest.mark.parametrize("text", TEXTS)
def test_a_picked_word_shows_its_effects_and_the_top_five_without_it(engine, text):
    explanation = explain(engine, text)
    for index, word in enumerate(explanation.words):
        view = word_view(explanation, index)
        assert (view.word, view.start, view.end, view.score) == (word.word, word.start, word.end, word.score)
        assert view.score_label == format_score(word.score)
        assert [(line.emoji, line.probability, line.effect) for line in view.effects] == [
            (emoji, probability, effect) for (emoji, probability), effect in zip(explanation.top_emojis, word.effects)
        ]
        assert [line.effect_label for line in view.effects] == [format_score(e) for e in word.effects]
        assert [(line.emoji, line.probability) for line in view.without] == list(word.without_top)
        assert [line.percent for line in view.without] == [format_probability(p) for _, p in word.without_top]


def test_a_one_word_message_has_nothing_left_without_its_word(engine):
    view = word_view(explain(engine, "hate"), 0)
    assert view.without == ()


@pytest.mark.parametrize("k", [1, 3, 5, 6, 17, MAX_TOP_K])
def test_top_k_is_the_explanations_five_then_the_messages_next_emojis(engine, k):
    explanation = explain(engine, "you are so stupid lol")
    probabilities = engine.model.predict([explanation.reading.ids], precision="fp32")[0]
    lines = top_k(explanation, probabilities, k)
    assert len(lines) == k
    assert [(line.emoji, line.probability) for line in lines[:5]] == list(explanation.top_emojis[:k])
    expected = top_emojis(probabilities, k)  # the same ranking from the 64 probabilities
    assert [line.emoji for line in lines] == [emoji for emoji, _ in expected]
    assert [line.probability for line in lines] == pytest.approx([p for _, p in expected], abs=1e-6)
    assert len({line.emoji.index for line in lines}) == k


@pytest.mark.parametrize("k", [0, 65])
def test_top_k_outside_1_to_64_is_refused(engine, k):
    with pytest.raises(ValueError, match="from 1 to 64"):
        top_k(explain(engine, "hi"), None, k)


def test_reading_counts_known_words_and_where_the_cut_fell(short_engine):
    text = "i love you so much zzyzx !! and the rest is never read"
    explanation = explain(short_engine, text)
    view = reading_view(explanation)
    reading = explanation.reading
    assert (view.known, view.words, view.share) == (reading.known, reading.word_count, reading.known_share)
    assert (view.read, view.total) == (6, len(short_engine.tokenizer.tokenize(text)))
    assert view.cut_at == text.index("zzyzx") + len("zzyzx")  # after the sixth token
    assert view.share_label == format_probability(reading.known_share)


def test_reading_of_a_text_read_whole_has_no_cut(engine):
    assert reading_view(explain(engine, "i love you")).cut_at is None
