"""Occlusion scores equal the brute-force definition; attention and ``explain`` are consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bot.deepmoji.architecture import checkpoint_shapes
from bot.deepmoji.emojis import top_emojis
from bot.deepmoji.engine import EmptyTextError, Engine
from bot.deepmoji.files import ModelFiles
from bot.deepmoji.kernels import PackedLayout
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.explain import UnknownMethodError, attention, explain, explain_steps, occlusion
from bot.explain.occlusion import occlusion_steps

VOCAB = 120


def small_model(seed: int = 3, vocab_size: int = VOCAB) -> DeepMoji:
    model = DeepMoji(vocab_size, embed_dim=16, hidden_size=8)
    model.load_state_dict(seeded_state_dict(seed, checkpoint_shapes(vocab_size, embed_dim=16, hidden_size=8)))
    return model.eval()


@pytest.fixture(scope="module")
def model() -> DeepMoji:
    return small_model()


def brute_force(model: DeepMoji, ids: list[int], top_k: int = 5, one_at_a_time: bool = False) -> np.ndarray:
    """The definition, spelled out with ``DeepMoji.predict``: N + 1 predictions."""
    p = model.predict([ids])[0].astype(np.float64)
    top = np.argsort(-p)[:top_k]
    if len(ids) == 1:
        return np.array([p[top].sum()])
    variants = [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
    if one_at_a_time:
        q = np.stack([model.predict([variant])[0] for variant in variants])
    else:
        q = model.predict(variants)
    return (p[top] - q[:, top]).sum(axis=1)


def random_ids(length: int, seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(0, VOCAB, length).tolist()


@pytest.mark.parametrize("length", [1, 2, 3, 4, 7, 30, 120])
def test_occlusion_equals_brute_force(model, length):
    ids = random_ids(length, seed=length)
    scores = occlusion(model, ids)
    assert scores.shape == (length,)
    np.testing.assert_allclose(scores, brute_force(model, ids), rtol=0, atol=1e-5)


@pytest.mark.parametrize("ids", [[17] * 25, [17, 40] * 12, [5, 5, 9, 5, 5]], ids=["same", "pair", "mixed"])
def test_repeated_words_score_the_same_as_brute_force(model, ids):
    scores = occlusion(model, ids)
    np.testing.assert_allclose(scores, brute_force(model, ids), rtol=0, atol=1e-5)
    if len(set(ids)) == 1:
        # Removing any copy of a repeated word leaves the same sequence.
        np.testing.assert_allclose(scores, scores[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("top_k", [1, 3, 64])
def test_top_k_changes_which_classes_count(model, top_k):
    ids = random_ids(12, seed=1)
    np.testing.assert_allclose(occlusion(model, ids, top_k), brute_force(model, ids, top_k), rtol=0, atol=1e-5)


def test_one_word_scores_its_whole_top_mass(model):
    p = model.predict([[42]])[0]
    assert occlusion(model, [42])[0] == pytest.approx(np.sort(p)[-5:].sum(), abs=1e-6)


def test_batched_chunks_equal_one_variant_at_a_time(model):
    ids = random_ids(41, seed=2)
    one_by_one = brute_force(model, ids, one_at_a_time=True)
    for max_rows in (1, 100, 10_000):  # one mirrored pair per chunk ... everything at once
        np.testing.assert_allclose(occlusion(model, ids, max_rows=max_rows), one_by_one, rtol=0, atol=1e-5)


def test_full_size_model_is_exact():
    model = DeepMoji()
    model.load_state_dict(seeded_state_dict(1))
    model.eval()
    ids = np.random.default_rng(5).integers(0, 50_000, 16).tolist()
    np.testing.assert_allclose(occlusion(model, ids), brute_force(model, ids), rtol=0, atol=1e-5)


def test_window_covering_the_message_is_exact_and_a_short_one_is_not(model):
    ids = random_ids(60, seed=4)
    exact = occlusion(model, ids)
    np.testing.assert_allclose(occlusion(model, ids, window=59), exact, rtol=0, atol=1e-9)
    approximate = occlusion(model, ids, window=2)
    assert not np.allclose(approximate, exact, rtol=0, atol=1e-7)
    # Still an approximation of the same quantity: close, and the same best word.
    assert np.abs(approximate - exact).max() < 0.1 * np.abs(exact).max()
    assert np.argmax(approximate) == np.argmax(exact)


def test_window_on_a_device_sized_chunking_matches_unchunked(model):
    ids = random_ids(50, seed=6)
    np.testing.assert_allclose(
        occlusion(model, ids, window=5, max_rows=1), occlusion(model, ids, window=5), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize(
    ("ids", "kwargs", "message"),
    [
        ([], {}, "empty"),
        ([1, VOCAB], {}, "outside the vocabulary"),
        ([1, 2], {"top_k": 0}, "top_k"),
        ([1, 2], {"top_k": 65}, "top_k"),
        ([1, 2], {"window": 0}, "window"),
    ],
)
def test_bad_arguments_are_clear_errors(model, ids, kwargs, message):
    with pytest.raises(ValueError, match=message):
        occlusion(model, ids, **kwargs)


def test_attention_is_the_weighting_the_model_pools_with(model):
    ids = random_ids(9, seed=8)
    weights = attention(model, ids)
    assert weights.shape == (9,) and weights.min() > 0
    assert weights.sum() == pytest.approx(1.0)
    # Pooling the model's own features with these weights reproduces its prediction.
    layout = PackedLayout.from_lengths([len(ids)])
    with torch.no_grad():
        features = model.encode(torch.tensor(ids), layout).double()
        linear = model.output_layer[0]
        logits = linear.weight.double() @ (torch.from_numpy(weights) @ features) + linear.bias.double()
    np.testing.assert_allclose(torch.softmax(logits, 0).numpy(), model.predict([ids])[0], atol=1e-6)


@pytest.fixture(scope="module")
def engine(small_model_dir) -> Engine:
    return Engine.load(ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"))


def test_explain_scores_every_token_with_its_span(engine):
    text = "I  LOVE you sooo much!!! :)"
    explanation = explain(engine, text)
    tokens = engine.tokenize(text)
    assert explanation.text == text
    assert [(w.word, w.start, w.end) for w in explanation.words] == [(t.word, t.start, t.end) for t in tokens]
    ids = [t.id for t in tokens]
    np.testing.assert_allclose([w.score for w in explanation.words], occlusion(engine.model, ids), atol=1e-12)
    assert explanation.method == "occlusion" and not explanation.approximate and explanation.window is None
    predicted = top_emojis(engine.predict([text])[0], 5)
    assert [emoji for emoji, _ in explanation.top_emojis] == [emoji for emoji, _ in predicted]
    assert [p for _, p in explanation.top_emojis] == pytest.approx([p for _, p in predicted], abs=1e-6)


def test_explain_by_occlusion_runs_the_model_once(engine, monkeypatch):
    """The emojis shown come from occlusion's own full pass, not from a second prediction."""
    monkeypatch.setattr(engine.model, "predict", lambda batch: pytest.fail("predicted again"))
    assert len(explain(engine, "i love you").top_emojis) == 5


def test_explain_attention(engine):
    explanation = explain(engine, "you are so stupid", method="attention")
    assert explanation.method == "attention"
    assert sum(w.score for w in explanation.words) == pytest.approx(1.0)


def test_explain_scores_what_the_model_reads_and_carries_the_reading(small_model_dir):
    files = ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json")
    engine = Engine.load(files, max_tokens=4)
    text = "i love you so much !!! zzkx"
    explanation = explain(engine, text)
    assert [word.word for word in explanation.words] == ["i", "love", "you", "so"]
    assert explanation.reading == engine.read(text) and explanation.reading.truncated
    truth = brute_force(engine.model, engine.encode(text))
    np.testing.assert_allclose([word.score for word in explanation.words], truth, rtol=0, atol=1e-5)


def test_long_messages_score_the_shown_words_exactly_and_say_so(engine):
    text = " ".join(["happy day", "hate it", "love you", "so sad"] * 5)
    long = explain(engine, text, exact_max_tokens=10, window=3)
    assert long.window == 3 and long.scoring in ("exact-shown", "exact-shown-unchecked")
    assert long.to_dict()["approximate"] is True
    exact = explain(engine, text, exact_max_tokens=100, window=3)
    assert not exact.approximate and exact.window is None and exact.scoring == "exact"


def test_explain_errors(engine):
    with pytest.raises(EmptyTextError):
        explain(engine, "   ")
    with pytest.raises(UnknownMethodError, match="unknown method"):
        explain(engine, "hello", method="magic")


def test_explain_steps_yields_progress_and_returns_what_explain_gives(engine):
    text = " ".join(["happy day", "hate it", "love you", "so sad"] * 3)
    steps = explain_steps(engine, text)
    fractions = []
    while True:
        try:
            fractions.append(next(steps))
        except StopIteration as done:
            stepped = done.value
            break
    assert fractions and fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] < 1
    whole = explain(engine, text)
    assert [w.score for w in stepped.words] == pytest.approx([w.score for w in whole.words], abs=1e-12)
    assert stepped.top_emojis == whole.top_emojis


def test_explain_steps_checks_its_arguments_before_the_first_slice(engine):
    with pytest.raises(EmptyTextError):
        explain_steps(engine, "   ")
    with pytest.raises(UnknownMethodError):
        explain_steps(engine, "hello", method="magic")


def test_occlusion_steps_yield_between_chunks_and_score_as_occlusion_does(model):
    ids = list(range(10, 40))
    steps = occlusion_steps(model, ids, max_rows=64)
    fractions = []
    while True:
        try:
            fractions.append(next(steps))
        except StopIteration as done:
            scores, probabilities = done.value
            break
    assert len(fractions) > 3 and fractions == sorted(fractions) and fractions[-1] < 1
    np.testing.assert_allclose(scores, occlusion(model, ids), atol=1e-7)
    np.testing.assert_allclose(probabilities, model.predict([ids])[0], atol=1e-6)
