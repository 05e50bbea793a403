"""The scores a reply shows equal brute-force leave-one-out (``DeepMoji.predict`` on every variant).

Up to ``exact_max_tokens`` every word is scored exactly; beyond it (``bot.explain.shown``) only
the words that can be shown are, and the check must pick the same bold words as brute force.
Windows of 1-2 tokens make the estimates rough on purpose, so the check has work to do.
"""

from __future__ import annotations

import functools
import importlib
import threading
from unittest import mock

import numpy as np
import pytest
import torch

from bot.deepmoji.architecture import checkpoint_shapes
from bot.deepmoji.engine import Engine
from bot.deepmoji.files import ModelFiles
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.explain import explain, explain_steps, finish
from bot.explain.explanation import EXACT, EXACT_SHOWN, EXACT_SHOWN_UNCHECKED
from bot.explain.highlight import highlighted_indices
from bot.explain.render import highlighted, render_markdown
from bot.explain.shown import FIRST_EXACT, shown_steps
from tests.explain.test_explain import VOCAB, random_ids
from tests.explain.test_explain import brute_force as brute_force_in_parts

WORDS = "i love you hate this stupid day so happy sad lol omg wow good bad great cute kill die miss fun the".split()
LENGTHS = [*range(1, 33), 40, 48, 63, 64, 65, 99, 127, 128, 160, 200]


@pytest.fixture(scope="module")
def engine(small_model_dir) -> Engine:
    files = ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json")
    return Engine.load(files, max_tokens=1000)


def brute_force(model: DeepMoji, ids: list[int]) -> np.ndarray:
    """``DeepMoji.predict`` on all N + 1 sequences as one batch: long messages' variants are
    hundreds of sequences, which ``predict`` would otherwise run a few at a time (rows are
    independent of their batch mates either way)."""
    with mock.patch("bot.deepmoji.model.MAX_BATCH_TOKENS", len(ids) * (len(ids) + 1)):
        return brute_force_in_parts(model, ids)


def words_text(count: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, count))


def shown_indices(explanation) -> list[int]:
    by_span = {(word.start, word.end): index for index, word in enumerate(explanation.words)}
    return [by_span[(word.start, word.end)] for word in highlighted(explanation)]


@pytest.mark.parametrize("length", LENGTHS)
def test_every_score_is_exact_up_to_exact_max_tokens(engine, length):
    explanation = explain(engine, words_text(length, seed=length), exact_max_tokens=1000)
    assert len(explanation.words) == length and explanation.scoring == EXACT
    truth = brute_force(engine.model, explanation.reading.ids)
    np.testing.assert_allclose([word.score for word in explanation.words], truth, rtol=0, atol=1e-5)


@pytest.mark.parametrize("length", [length for length in LENGTHS if length >= 5] + [300, 500])
def test_beyond_it_the_shown_words_are_exact_and_the_right_ones(engine, length):
    explanation = explain(engine, words_text(length, seed=length), exact_max_tokens=0, window=2)
    truth = brute_force(engine.model, explanation.reading.ids)
    shown = shown_indices(explanation)
    assert explanation.checked and explanation.window == (2 if explanation.approximate else None)
    assert shown == highlighted_indices(truth)
    for index in shown:
        assert explanation.words[index].exact
        assert explanation.words[index].score == pytest.approx(truth[index], abs=1e-5)
    assert explanation.scoring in (EXACT, EXACT_SHOWN)  # EXACT: every estimate happened to be checked exactly


@pytest.fixture(scope="module")
def remembering_model() -> DeepMoji:
    """A small model whose recurrent weights carry state far (the full-size seeded model's gain):
    short windows estimate it badly, so the check must grow its exact set."""
    shapes = checkpoint_shapes(VOCAB, embed_dim=16, hidden_size=16)
    model = DeepMoji(VOCAB, embed_dim=16, hidden_size=16)
    model.load_state_dict(seeded_state_dict(3, shapes, scales={"lstm_weight": 0.45}))
    return model.eval()


@functools.cache
def remembering_truth(length: int, seed: int) -> tuple[list[int], np.ndarray]:
    model = DeepMoji(VOCAB, embed_dim=16, hidden_size=16)
    model.load_state_dict(
        seeded_state_dict(3, checkpoint_shapes(VOCAB, embed_dim=16, hidden_size=16), scales={"lstm_weight": 0.45})
    )
    ids = random_ids(length, seed)
    return ids, brute_force(model.eval(), ids)


@pytest.mark.parametrize("window", [1, 2, 4])
@pytest.mark.parametrize(("length", "seed"), [(10, 0), (25, 1), (40, 1), (40, 2), (80, 4), (150, 5)])
def test_shown_words_on_a_model_that_remembers(remembering_model, length, seed, window):
    ids, truth = remembering_truth(length, seed)
    scored = finish(shown_steps(remembering_model, ids, window=window))
    shown = highlighted_indices(scored.scores)
    assert scored.checked and shown == highlighted_indices(truth)
    np.testing.assert_allclose(scored.scores[scored.exact], truth[scored.exact], rtol=0, atol=1e-5)


def test_the_check_grows_the_exact_set_until_it_holds(remembering_model):
    """One-token windows: the first batch's margin leaves rivals, so more words get exact scores."""
    ids, truth = remembering_truth(40, 1)
    scored = finish(shown_steps(remembering_model, ids, window=1))
    assert 2 * FIRST_EXACT < scored.exact.sum() < len(ids) and scored.checked
    assert highlighted_indices(scored.scores) == highlighted_indices(truth)


def test_a_check_that_gives_up_says_so_and_still_shows_exact_scores(remembering_model):
    ids, truth = remembering_truth(40, 1)
    scored = finish(shown_steps(remembering_model, ids, window=1, max_exact=2 * FIRST_EXACT))
    assert not scored.checked and scored.exact.sum() == 2 * FIRST_EXACT
    for index in highlighted_indices(scored.scores):
        assert scored.exact[index] and scored.scores[index] == pytest.approx(truth[index], abs=1e-5)


def test_full_size_model_shown_and_exact_scores_equal_brute_force():
    model = DeepMoji()
    model.load_state_dict(seeded_state_dict(1))
    model.eval()
    ids = np.random.default_rng(9).integers(10, 50_000, 40).tolist()
    truth = brute_force(model, ids)
    scored = finish(shown_steps(model, ids, window=4))
    shown = highlighted_indices(scored.scores)
    assert scored.checked and shown == highlighted_indices(truth)
    np.testing.assert_allclose(scored.scores[scored.exact], truth[scored.exact], rtol=0, atol=1e-5)
    assert not scored.exact.all()  # the estimates really were estimates


def test_closing_explain_steps_midway_leaves_nothing_behind(engine):
    text = words_text(90, seed=3)
    expected = explain(engine, text, exact_max_tokens=0, window=2)
    steps = explain_steps(engine, text, exact_max_tokens=0, window=2)
    next(steps)
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()
    # The worker's pool may run the next slice on another thread, and close it from a third.
    resumed = []
    thread = threading.Thread(target=lambda: resumed.append(next(steps)))
    thread.start()
    thread.join()
    assert resumed and not torch.is_inference_mode_enabled()
    steps.close()
    with pytest.raises(StopIteration):
        next(steps)
    again = explain(engine, text, exact_max_tokens=0, window=2)
    assert [word.score for word in again.words] == [word.score for word in expected.words]
    assert again.top_emojis == expected.top_emojis


def test_slices_are_bounded_by_work_not_by_chunks(engine, monkeypatch):
    """A smaller slice budget cuts the same computation into more slices, with the same result."""
    occlusion_module = importlib.import_module("bot.explain.occlusion")

    text = words_text(40, seed=5)

    def slices() -> tuple[int, list[float]]:
        steps = explain_steps(engine, text, exact_max_tokens=1000)
        count = 0
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return count, [word.score for word in done.value.words]
            count += 1

    few, scores = slices()
    monkeypatch.setattr(occlusion_module, "SLICE_MACS", 1.0)  # one time step per slice
    many, same_scores = slices()
    assert many > 5 * few
    # Products cut into other row blocks round differently in float32: far below the 1e-5 goal.
    assert same_scores == pytest.approx(scores, abs=1e-8)


def test_the_reply_names_how_exact_its_scores_are(engine):
    exact = explain(engine, words_text(20, seed=1), exact_max_tokens=1000)
    assert "Exact." in render_markdown(exact).splitlines()[-1]
    shown = explain(engine, words_text(60, seed=4), exact_max_tokens=0, window=1)
    assert shown.scoring == EXACT_SHOWN
    assert "Exact for the words shown" in render_markdown(shown).splitlines()[-1]
    assert "pproximate" not in render_markdown(shown)
    assert shown.to_dict()["scoring"] == EXACT_SHOWN and shown.to_dict()["window"] == 1
    assert any(not word["exact"] for word in shown.to_dict()["words"])
    assert EXACT_SHOWN_UNCHECKED not in (exact.scoring, shown.scoring)


def brute_force_without(model: DeepMoji, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The definition of the per-emoji view: ``p`` and, for each word, ``DeepMoji.predict`` of the
    message without it (a one-word message has no variant to predict: zeros)."""
    rows = model.predict([ids] + [ids[:i] + ids[i + 1 :] for i in range(len(ids))] if len(ids) > 1 else [ids])
    rows = rows.astype(np.float64)
    return rows[0], rows[1:] if len(ids) > 1 else np.zeros((1, rows.shape[1]))


@pytest.mark.parametrize("length", range(1, 41))
def test_each_words_effects_and_the_top_five_without_it_are_exact(engine, length):
    explanation = explain(engine, words_text(length, seed=1000 + length))
    assert explanation.scoring == EXACT
    p, without = brute_force_without(engine.model, explanation.reading.ids)
    top = [emoji.index for emoji, _ in explanation.top_emojis]
    for index, word in enumerate(explanation.words):
        np.testing.assert_allclose(word.effects, p[top] - without[index][top], rtol=0, atol=1e-5)
        assert sum(word.effects) == pytest.approx(word.score, abs=1e-9)  # the aggregate is their sum
        if length == 1:
            assert word.without_top == ()
            continue
        truth = np.argsort(-without[index], kind="stable")[:5]
        got = [emoji.index for emoji, _ in word.without_top]
        # Equal up to ties closer than float precision; probabilities exact to 1e-5 either way.
        assert got == truth.tolist() or np.allclose(without[index][got], without[index][truth], atol=1e-6)
        np.testing.assert_allclose([q for _, q in word.without_top], without[index][got], rtol=0, atol=1e-5)


def test_beyond_exact_max_tokens_the_shown_words_effects_are_exact(engine):
    explanation = explain(engine, words_text(60, seed=60), exact_max_tokens=0, window=2)
    p, without = brute_force_without(engine.model, explanation.reading.ids)
    top = [emoji.index for emoji, _ in explanation.top_emojis]
    for index in shown_indices(explanation):
        word = explanation.words[index]
        assert word.exact
        np.testing.assert_allclose(word.effects, p[top] - without[index][top], rtol=0, atol=1e-5)


def test_attention_leaves_no_word_out(engine):
    explanation = explain(engine, "i love you", method="attention")
    assert all(word.effects is None and word.without_top is None for word in explanation.words)
    assert explanation.to_dict()["words"][0]["effects"] is None
