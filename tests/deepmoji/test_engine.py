"""The Engine facade on the small seeded model: loading checks, batched predict, top-k."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bot.deepmoji.architecture import checkpoint_shapes
from bot.deepmoji.emojis import EMOJIS, top_emojis
from bot.deepmoji.engine import EmptyTextError, Engine, ModelMismatchError
from bot.deepmoji.files import ModelFiles
from bot.deepmoji.seeded import seeded_state_dict
from bot.errors import WhymojiError
from tests.conftest import small_vocabulary

TEXTS = ["i love you so much !!", "i hate this stupid day", "omg haha", "sad"]


@pytest.fixture(scope="module")
def files(small_model_dir) -> ModelFiles:
    return ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json")


@pytest.fixture(scope="module")
def engine(files) -> Engine:
    return Engine.load(files)


def test_load_builds_a_model_the_size_of_the_vocabulary(engine):
    assert engine.model.vocab_size == len(small_vocabulary())
    assert engine.model.num_classes == len(EMOJIS)


def test_encode_and_tokenize_use_the_vocabulary(engine):
    vocabulary = small_vocabulary()
    assert engine.encode("love") == [vocabulary["love"]]
    assert [token.word for token in engine.tokenize("i love you")] == ["i", "love", "you"]
    assert engine.encode("i love you") == [token.id for token in engine.tokenize("i love you")]


def test_predict_gives_one_probability_row_per_text(engine):
    probabilities = engine.predict(TEXTS)
    assert probabilities.shape == (len(TEXTS), 64)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(probabilities[0], probabilities[1]), "different texts, same output"


def test_predict_runs_the_whole_batch_in_one_model_call(engine, monkeypatch):
    calls = []
    original = engine.model.predict
    monkeypatch.setattr(
        engine.model, "predict", lambda batch, **options: calls.append(batch) or original(batch, **options)
    )
    engine.predict(TEXTS)
    assert len(calls) == 1 and len(calls[0]) == len(TEXTS)


def test_batched_rows_match_texts_predicted_alone(engine):
    together = engine.predict(TEXTS)
    alone = np.stack([engine.predict([text])[0] for text in TEXTS])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_predict_of_no_texts_is_an_empty_matrix(engine):
    assert engine.predict([]).shape == (0, 64)


@pytest.mark.parametrize("blank", ["", "   ", "\n\t "])
def test_a_text_without_tokens_is_named_and_the_model_is_not_run(engine, blank, monkeypatch):
    monkeypatch.setattr(engine.model, "predict", lambda batch: pytest.fail("model was run"))
    with pytest.raises(EmptyTextError) as error:
        engine.predict(["hello world", blank, "fun"])
    assert error.value.index == 1
    assert "text 2 of 3 is empty" in str(error.value)
    assert isinstance(error.value, WhymojiError)


def test_a_single_empty_text_reads_naturally(engine):
    with pytest.raises(EmptyTextError, match="^the text is empty"):
        engine.predict([""])


def test_a_bare_string_is_refused_rather_than_split_into_characters(engine):
    with pytest.raises(TypeError, match="sequence of texts"):
        engine.predict("hello")


def test_top_sorts_by_probability_and_keeps_k(engine):
    row = engine.predict(["i love you"])[0]
    picks = top_emojis(row, 5)
    assert len(picks) == 5
    assert [p for _, p in picks] == sorted((p for _, p in picks), reverse=True)
    assert picks[0][0] is EMOJIS[int(np.argmax(row))]
    for emoji, p in picks:
        assert p == pytest.approx(float(row[emoji.index]))
    assert min(p for _, p in picks) >= np.sort(row)[-5]


def test_top_drops_emojis_below_the_threshold():
    row = np.zeros(64, dtype=np.float32)
    row[[3, 8, 40]] = [0.5, 0.3, 0.2]
    picks = top_emojis(row, 10, threshold=0.25)
    assert [(emoji.index, p) for emoji, p in picks] == [(3, 0.5), (8, pytest.approx(0.3))]
    assert top_emojis(row, 2, threshold=0.0)[1][0] is EMOJIS[8]


def test_top_leaves_excluded_classes_out_before_choosing_k():
    row = np.zeros(64, dtype=np.float32)
    row[[42, 3, 8, 40]] = [0.4, 0.3, 0.2, 0.1]
    picks = top_emojis(row, 2, exclude={42})
    assert [emoji.index for emoji, _ in picks] == [3, 8]
    assert [emoji.index for emoji, _ in top_emojis(row, 3, 0.15, exclude=frozenset({42, 8}))] == [3]


def test_top_breaks_ties_by_class_order():
    picks = top_emojis(np.full(64, 1 / 64), 3)
    assert [emoji.index for emoji, _ in picks] == [0, 1, 2]


@pytest.mark.parametrize("k", [0, 65, -1])
def test_top_rejects_k_out_of_range(k):
    with pytest.raises(ValueError, match="k must be from 1 to 64"):
        top_emojis(np.full(64, 1 / 64), k)


def test_top_rejects_a_batch_instead_of_a_row():
    with pytest.raises(ValueError, match="one row of 64"):
        top_emojis(np.full((2, 64), 1 / 64), 3)


def test_vocabulary_and_weights_of_different_sizes_are_refused(files, tmp_path):
    vocabulary = small_vocabulary()
    vocabulary["extra_word"] = len(vocabulary)
    bigger = tmp_path / "vocabulary.json"
    bigger.write_text(json.dumps(vocabulary))
    with pytest.raises(ModelMismatchError) as error:
        Engine.load(ModelFiles(files.weights, bigger))
    message = str(error.value)
    assert f"{len(vocabulary)} tokens" in message
    assert f"{len(vocabulary) - 1} embedding rows" in message
    assert str(bigger) in message


def test_vocabulary_ids_beyond_the_embedding_are_refused(files, tmp_path):
    vocabulary = small_vocabulary()
    vocabulary["love"] = len(vocabulary) + 5  # same size, one id past the last row
    shifted = tmp_path / "vocabulary.json"
    shifted.write_text(json.dumps(vocabulary))
    with pytest.raises(ModelMismatchError, match=f"highest id {len(vocabulary) + 5}"):
        Engine.load(ModelFiles(files.weights, shifted))


def test_weights_with_other_than_64_classes_are_refused(files, tmp_path):
    shapes = checkpoint_shapes(vocab_size=len(small_vocabulary()), embed_dim=8, hidden_size=4, num_classes=10)
    weights = tmp_path / "pytorch_model.bin"
    torch.save(seeded_state_dict(seed=3, shapes=shapes), weights)
    with pytest.raises(ModelMismatchError, match="10 classes"):
        Engine.load(ModelFiles(weights, files.vocabulary))


def test_a_missing_weights_file_is_a_user_facing_error(files, tmp_path):
    with pytest.raises(WhymojiError):
        Engine.load(ModelFiles(tmp_path / "absent.bin", files.vocabulary))


def test_the_package_exports_the_engine_pieces():
    import bot.deepmoji as package

    for name in package.__all__:
        assert getattr(package, name) is not None, name
    assert package.Engine is Engine and package.EMOJIS is EMOJIS
    with pytest.raises(AttributeError):
        package.not_a_name  # noqa: B018


def test_read_counts_known_and_unknown_words_but_not_mentions_urls_or_numbers(engine):
    reading = engine.read("i love 寿 @someone https://example.com 42 zzqx")
    vocabulary = small_vocabulary()
    names = {index: word for word, index in vocabulary.items()}
    assert [names[index] for index in reading.ids] == [
        "i",
        "love",
        "CUSTOM_UNKNOWN",
        "CUSTOM_AT",
        "CUSTOM_URL",
        "CUSTOM_NUMBER",
        "CUSTOM_UNKNOWN",
    ]
    assert (reading.known, reading.unknown, reading.word_count) == (2, 2, 4)
    assert reading.known_share == pytest.approx(0.5)
    assert not reading.truncated and reading.total == 7


@pytest.mark.parametrize(
    ("text", "share"),
    [("i love you", 1.0), ("寿司 寿司 寿司", 0.0), ("@someone https://example.com", 0.0), ("i 寿 寿 寿", 0.25)],
)
def test_known_share_is_the_part_of_the_words_the_model_knows(engine, text, share):
    assert engine.read(text).known_share == pytest.approx(share)


def test_the_model_reads_at_most_max_tokens(files):
    engine = Engine.load(files, max_tokens=3)
    text = "i love you so much"
    reading = engine.read(text)
    assert [token.word for token in reading.tokens] == ["i", "love", "you"]
    assert reading.truncated and reading.total == 5
    assert engine.encode(text) == reading.ids == engine.encode("i love you")
    np.testing.assert_array_equal(engine.predict([text]), engine.predict(["i love you"]))


def test_the_configured_default_is_the_engines():
    from bot.config import ModelConfig
    from bot.deepmoji.engine import DEFAULT_MAX_TOKENS

    assert ModelConfig().max_tokens == DEFAULT_MAX_TOKENS


def test_max_tokens_must_be_positive(files):
    with pytest.raises(ValueError, match="max_tokens"):
        Engine.load(files, max_tokens=0)


def test_int8_engine_predicts_in_int8_while_the_model_stays_fp32_for_explanations(files):
    fp32 = Engine.load(files)
    int8 = Engine.load(files, precision="int8")
    assert int8.precision == "int8" and fp32.precision == "fp32"
    quantized, exact = int8.predict(TEXTS), fp32.predict(TEXTS)
    assert 0 < np.abs(quantized - exact).max() < 0.1
    # /why reads the model directly: fp32, whatever the engine's precision.
    ids = [int8.encode(text) for text in TEXTS]
    np.testing.assert_array_equal(int8.model.predict(ids), exact)


def test_unknown_precision_is_refused(files):
    with pytest.raises(ValueError, match="precision must be one of fp32, int8"):
        Engine.load(files, precision="fp16")
