"""DeepMoji on ONNX Runtime: the same probabilities as the torch path, length groups, int8."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bot.deepmoji import runtime
from bot.deepmoji.architecture import checkpoint_shapes
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.runtime import MAX_CALL_TOKENS, RuntimeModel, length_groups
from bot.deepmoji.seeded import seeded_state_dict

SMALL = {"vocab_size": 120, "embed_dim": 16, "hidden_size": 8}


def pair(seed: int = 3, **dimensions) -> tuple[DeepMoji, DeepMoji]:
    """The same seeded weights twice: on ONNX Runtime (the default) and on the torch path."""
    dimensions = dimensions or SMALL
    state = seeded_state_dict(seed, checkpoint_shapes(**dimensions))
    models = []
    for backend in ("onnxruntime", "torch"):
        model = DeepMoji(**dimensions)
        model.load_state_dict(state)
        model.backend = backend
        models.append(model.eval())
    return models[0], models[1]


def ids(rng: np.random.Generator, length: int, vocab_size: int = SMALL["vocab_size"]) -> list[int]:
    return rng.integers(10, vocab_size, length).tolist()


@pytest.mark.parametrize("length", [1, 2, 7, 30, 257])
def test_single_messages_match_the_torch_path(length):
    onnx_model, torch_model = pair()
    message = [ids(np.random.default_rng(length), length)]
    assert onnx_model.uses_runtime() and not torch_model.uses_runtime()
    np.testing.assert_allclose(onnx_model.predict(message), torch_model.predict(message), atol=1e-6, rtol=0)


def test_mixed_batches_match_the_torch_path_in_several_length_groups():
    onnx_model, torch_model = pair(4)
    rng = np.random.default_rng(1)
    lengths = [1, 1, 2, 3, 60, 3, 61, 1, 200, 5, 4, 59]
    batch = [ids(rng, length) for length in lengths]
    assert len(length_groups(lengths)) >= 3  # so the test really splits and reassembles
    np.testing.assert_allclose(onnx_model.predict(batch), torch_model.predict(batch), atol=1e-6, rtol=0)
    alone = np.concatenate([onnx_model.predict([row]) for row in batch])
    np.testing.assert_allclose(onnx_model.predict(batch), alone, atol=1e-6, rtol=0)


def test_full_size_weights_match_the_torch_path():
    onnx_model, torch_model = pair(1, vocab_size=50_000, embed_dim=256, hidden_size=512)
    rng = np.random.default_rng(2)
    batch = [ids(rng, length, 50_000) for length in (1, 4, 12, 30, 31, 90)]
    np.testing.assert_allclose(onnx_model.predict(batch), torch_model.predict(batch), atol=1e-5, rtol=0)


def test_the_graph_follows_parameter_changes():
    onnx_model, torch_model = pair()
    batch = [[12, 13, 14], [15]]
    before = onnx_model.predict(batch)
    with torch.no_grad():
        for model in (onnx_model, torch_model):
            model.lstm_1.weight_hh_l0_reverse.mul_(-2.0)  # in place: same tensors, new version
            model.output_layer[0].bias[5] += 3.0
    after = onnx_model.predict(batch)
    assert np.abs(after - before).max() > 1e-2
    np.testing.assert_allclose(after, torch_model.predict(batch), atol=1e-6, rtol=0)


def test_the_session_is_built_once_and_follows_the_thread_count():
    onnx_model, _ = pair()
    threads = torch.get_num_threads()
    first = onnx_model.runtime()
    onnx_model.predict([[11, 12]])
    assert onnx_model.runtime() is first and first.threads == threads
    try:
        torch.set_num_threads(threads + 1)
        rebuilt = onnx_model.runtime()
        assert rebuilt is not first and rebuilt.threads == threads + 1
    finally:
        torch.set_num_threads(threads)


def test_the_embedding_is_read_from_the_parameter_not_copied():
    onnx_model, _ = pair()
    assert np.shares_memory(onnx_model.runtime().embedding, onnx_model.embed.weight.detach().numpy())


def test_other_devices_and_the_torch_backend_use_torch():
    onnx_model, _ = pair()
    onnx_model.backend = "torch"
    assert not onnx_model.uses_runtime()
    with pytest.raises(ValueError, match="needs the onnxruntime backend"):
        onnx_model.predict([[11]], precision="int8")
    onnx_model.backend = "tensorflow"
    with pytest.raises(ValueError, match="backend must be one of onnxruntime, torch"):
        onnx_model.predict([[11]])


def test_unknown_precision_and_threads_are_refused():
    state = {key: value.numpy() for key, value in seeded_state_dict(3, checkpoint_shapes(**SMALL)).items()}
    with pytest.raises(ValueError, match="precision must be one of fp32, int8, got 'fp16'"):
        RuntimeModel(state, precision="fp16")
    with pytest.raises(ValueError, match="threads must be at least 1"):
        runtime.session_options(0)


def test_int8_stays_close_to_fp32_on_full_size_weights():
    """The stated bound (DEVELOPERS.md): max |diff| under 0.05 and the same top emoji for at
    least 90% of messages, on the seeded full-size weights."""
    model = DeepMoji()
    model.load_state_dict(seeded_state_dict(1))
    model.eval()
    rng = np.random.default_rng(3)
    batch = [ids(rng, int(length), 50_000) for length in rng.integers(1, 40, 40)]
    fp32 = model.predict(batch)
    int8 = model.predict(batch, precision="int8")
    assert int8.shape == fp32.shape and int8.dtype == np.float32
    np.testing.assert_allclose(int8.sum(axis=1), 1.0, atol=1e-5)
    assert 0 < np.abs(int8 - fp32).max() < 0.05  # really quantized, and close
    assert (int8.argmax(axis=1) == fp32.argmax(axis=1)).mean() >= 0.9
    alone = np.concatenate([model.predict([row], precision="int8") for row in batch[:5]])
    np.testing.assert_array_equal(int8[:5], alone)  # int8 rows do not depend on batch mates


def test_int8_quantization_logs_no_advice(caplog):
    onnx_model, _ = pair()
    with caplog.at_level("WARNING"):
        onnx_model.predict([[11, 12]], precision="int8")
    assert not [record for record in caplog.records if "quantization" in record.getMessage()]


# --- length groups -------------------------------------------------------------------------


def test_groups_cover_every_index_once_in_runs_of_similar_length():
    rng = np.random.default_rng(7)
    lengths = rng.integers(1, 120, 64).tolist()
    groups = length_groups(lengths)
    assert sorted(np.concatenate(groups).tolist()) == list(range(64))
    spans = [(min(lengths[i] for i in g), max(lengths[i] for i in g)) for g in groups]
    assert all(high <= low for (_, high), (low, _) in itertools.pairwise(spans))  # sorted, no overlap
    assert 1 < len(groups) < 64


def test_similar_lengths_share_one_call_and_far_apart_ones_do_not():
    assert [g.tolist() for g in length_groups([5])] == [[0]]
    assert len(length_groups([7, 8, 7, 8, 7, 8, 7, 8])) == 1
    assert [sorted(g.tolist()) for g in length_groups([2, 200, 3, 2])] == [[0, 2, 3], [1]]


def test_a_call_holds_at_most_the_token_limit_unless_one_message_is_longer():
    lengths = [100] * 50 + [MAX_CALL_TOKENS + 5]
    for group in length_groups(lengths):
        padded = max(lengths[i] for i in group) * len(group)
        assert padded <= MAX_CALL_TOKENS or len(group) == 1


def test_the_cost_model_decides_the_split(monkeypatch):
    lengths = [4, 4, 4, 40, 40, 40]
    monkeypatch.setattr(runtime, "CALL_COST", 1e6)  # calls dear: one call
    assert len(length_groups(lengths)) == 1
    monkeypatch.setattr(runtime, "CALL_COST", 0.0)  # calls free: no padding
    assert len(length_groups(lengths)) == 2
