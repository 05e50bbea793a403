"""DeepMoji model: conformance, batch independence, the plain reference, kernels, load_model."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.deepmoji import kernels as kernels_module
from bot.deepmoji import model as model_module
from bot.deepmoji.architecture import BACKENDS, checkpoint_shapes
from bot.deepmoji.checkpoint import CheckpointError, load_model
from bot.deepmoji.device import DeviceError
from bot.deepmoji.kernels import BatchedLinear, PackedLayout, run_recurrence
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.reference import ReferenceDeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.errors import WhymojiError

SMALL = {"vocab_size": 120, "embed_dim": 16, "hidden_size": 8}


def small_model(seed: int = 3, backend: str = "onnxruntime") -> tuple[DeepMoji, dict[str, torch.Tensor]]:
    state = seeded_state_dict(seed, checkpoint_shapes(**SMALL))
    model = DeepMoji(**SMALL)
    model.load_state_dict(state)
    model.backend = backend
    return model.eval(), state


def random_batch(rng: np.random.Generator, size: int, max_length: int, vocab_size: int) -> list[list[int]]:
    return [rng.integers(0, vocab_size, rng.integers(1, max_length + 1)).tolist() for _ in range(size)]


@pytest.fixture(scope="module")
def conformance(shared_dir: Path) -> dict:
    return json.loads((shared_dir / "conformance" / "model.json").read_text())


@pytest.fixture(scope="module")
def full_state() -> dict[str, torch.Tensor]:
    return seeded_state_dict(1)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each semantic test runs on both CPU backends of ``DeepMoji.predict``."""
    return request.param


# --- semantics ----------------------------------------------------------------------------


def test_full_size_matches_conformance_cases(conformance, full_state, backend):
    assert conformance["weights"]["seed"] == 1
    model = DeepMoji()
    model.load_state_dict(full_state)
    model.backend = backend
    cases = conformance["cases"]
    expected = np.array([case["probabilities"] for case in cases])
    batched = model.predict([case["ids"] for case in cases])
    assert batched.dtype == np.float32 and batched.shape == (len(cases), 64)
    np.testing.assert_allclose(batched, expected, atol=1e-5, rtol=0)
    for case, row in zip(cases[:6], expected[:6]):
        np.testing.assert_allclose(model.predict([case["ids"]])[0], row, atol=1e-5, rtol=0)


def test_reference_matches_conformance_cases(conformance, full_state):
    cases = [case for case in conformance["cases"] if len(case["ids"]) <= 13]
    predicted = ReferenceDeepMoji(full_state).predict([case["ids"] for case in cases])
    np.testing.assert_allclose(predicted, [case["probabilities"] for case in cases], atol=1e-5, rtol=0)


def test_state_dict_has_the_published_keys_and_shapes():
    published = {key: torch.Size(shape) for key, shape in checkpoint_shapes().items()}
    with torch.device("meta"):  # shapes only, no 100 MB of initialisation
        ours = {key: tensor.shape for key, tensor in DeepMoji().state_dict().items()}
    assert ours == published
    assert list(ours) == list(published)


def test_agrees_with_reference_on_small_models(backend):
    rng = np.random.default_rng(11)
    for seed in (3, 4):
        model, state = small_model(seed, backend)
        batch = random_batch(rng, 24, 30, SMALL["vocab_size"])
        np.testing.assert_allclose(model.predict(batch), ReferenceDeepMoji(state).predict(batch), atol=1e-6, rtol=0)


def test_rows_do_not_depend_on_batch_mates(backend):
    model, _ = small_model(backend=backend)
    rng = np.random.default_rng(5)
    batch = random_batch(rng, 17, 25, SMALL["vocab_size"]) + [[7], [7, 7], [9] * 25]
    batched = model.predict(batch)
    alone = np.concatenate([model.predict([ids]) for ids in batch])
    np.testing.assert_allclose(batched, alone, atol=1e-6, rtol=0)
    reversed_order = model.predict(batch[::-1])[::-1]
    np.testing.assert_allclose(batched, reversed_order, atol=1e-6, rtol=0)


def test_probabilities_are_distributions_and_change_with_the_text(backend):
    model, _ = small_model(backend=backend)
    probabilities = model.predict([[11, 12, 13], [40, 41]])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert (probabilities > 0).all()
    assert not np.allclose(probabilities[0], probabilities[1])


def test_new_weights_are_picked_up_after_load_state_dict(backend):
    model, _ = small_model(3, backend)
    batch = [[12, 13, 14, 15]]
    model.predict(batch)  # fills the derived-weight caches
    other = seeded_state_dict(9, checkpoint_shapes(**SMALL))
    model.load_state_dict(other)
    np.testing.assert_allclose(model.predict(batch), ReferenceDeepMoji(other).predict(batch), atol=1e-6, rtol=0)


# --- bad input ----------------------------------------------------------------------------


def test_empty_sequence_names_its_row(backend):
    model, _ = small_model(backend=backend)
    with pytest.raises(ValueError, match="row 1"):
        model.predict([[3, 4], [], [5]])


@pytest.mark.parametrize("bad_id", [-1, SMALL["vocab_size"], 10**6])
def test_out_of_range_ids_are_refused(bad_id, backend):
    model, _ = small_model(backend=backend)
    with pytest.raises(ValueError, match=rf"row 2 has token id {bad_id}"):
        model.predict([[3], [4, 5], [6, bad_id]])


@pytest.mark.parametrize("bad_row", [[3, "five"], [3, 4.5], "abc"])
def test_non_integer_ids_are_refused(bad_row, backend):
    model, _ = small_model(backend=backend)
    with pytest.raises(ValueError, match="integers"):
        model.predict([[3], bad_row])


def test_numpy_and_tensor_rows_are_accepted(backend):
    model, _ = small_model(backend=backend)
    expected = model.predict([[5, 6, 7]])
    np.testing.assert_array_equal(model.predict([np.array([5, 6, 7])]), expected)
    np.testing.assert_array_equal(model.predict([(5, 6, 7)]), expected)


def test_empty_batch_gives_no_rows(backend):
    model, _ = small_model(backend=backend)
    assert model.predict([]).shape == (0, 64)


# --- kernels ------------------------------------------------------------------------------


def test_packed_layout_positions():
    layout = PackedLayout.from_lengths([2, 4, 1])
    assert layout.order.tolist() == [1, 0, 2]
    assert layout.counts == (3, 2, 1, 1)
    assert layout.sequence.tolist() == [0, 1, 2, 0, 1, 0, 0]
    assert layout.position.tolist() == [0, 0, 0, 1, 1, 2, 3]
    # the longest (length 4) mirrors 0<->3 and 1<->2; length 2 mirrors 0<->1; length 1 stays
    assert layout.reverse.tolist() == [6, 4, 2, 5, 1, 3, 0]
    # rows of the batch [[1, 2], [3, 4, 5, 6], [7]], concatenated, packed time-major
    assert layout.pack(np.arange(1, 8)).tolist() == [3, 1, 7, 4, 2, 5, 6]
    with pytest.raises(ValueError):
        PackedLayout.from_lengths([3, 0])


def test_recurrence_restarts_from_given_states():
    """Running from the (h, c) at position k reproduces the full run's later positions."""
    model, _ = small_model()
    weights = model.lstm_0.kernel_weights()
    torch.manual_seed(0)
    inputs = torch.randn(10, SMALL["embed_dim"])
    layout = PackedLayout.from_lengths([10])
    gates = weights.input_gates(torch.stack((inputs, inputs.flip(0))))
    hidden, cells = run_recurrence(gates, weights.hidden, layout.counts)
    k = 4
    steps = (1,) * (10 - k)
    initial = (hidden[:, k - 1 : k], cells[:, k - 1 : k])
    rest_hidden, rest_cells = run_recurrence(gates[:, k:], weights.hidden, steps, initial)
    torch.testing.assert_close(rest_hidden, hidden[:, k:], atol=1e-6, rtol=0)
    torch.testing.assert_close(rest_cells, cells[:, k:], atol=1e-6, rtol=0)
    assert not torch.allclose(run_recurrence(gates[:, k:], weights.hidden, steps)[0], hidden[:, k:])


def test_recurrence_restarts_a_shrinking_batch():
    """Restarting at step 2 of a packed batch (lengths 6, 4, 3) continues every sequence exactly."""
    model, _ = small_model()
    weights = model.lstm_1.kernel_weights()
    layout = PackedLayout.from_lengths([4, 6, 3])
    torch.manual_seed(1)
    gates = weights.input_gates(torch.randn(2, layout.rows, 2 * SMALL["hidden_size"]))
    hidden, cells = run_recurrence(gates, weights.hidden, layout.counts)
    assert layout.counts == (3, 3, 3, 2, 1, 1)
    before, start = slice(3, 6), 6  # rows of step 1, first row of step 2
    initial = (hidden[:, before], cells[:, before])
    rest_hidden, _ = run_recurrence(gates[:, start:], weights.hidden, layout.counts[2:], initial)
    torch.testing.assert_close(rest_hidden, hidden[:, start:], atol=1e-6, rtol=0)


@pytest.mark.parametrize("rows", [1, 3, 600])
def test_batched_linear_applies_each_map_with_its_bias_or_the_given_addend(rows):
    torch.manual_seed(rows)
    weight, bias = torch.randn(2, 24, 40), torch.randn(2, 1, 40)
    x, add = torch.randn(2, rows, 24), torch.randn(2, rows, 40)
    for d in range(2):
        expected = x[d] @ weight[d]
        torch.testing.assert_close(BatchedLinear(weight, bias)(x)[d], expected + bias[d], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(BatchedLinear(weight, bias)(x, add=add)[d], expected + add[d], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(BatchedLinear(weight)(x)[d], expected, atol=1e-5, rtol=1e-5)


def test_encode_exposes_features_and_attention_logits():
    model, state = small_model()
    layout = PackedLayout.from_lengths([5])
    ids = torch.tensor([20, 21, 22, 23, 24])
    with torch.inference_mode():
        features = model.encode(ids, layout)
        logits = model.attention_logits(features)
    hidden = SMALL["hidden_size"]
    assert features.shape == (5, 4 * hidden + SMALL["embed_dim"])
    torch.testing.assert_close(features[:, 4 * hidden :], torch.tanh(state["embed.weight"][ids]))
    torch.testing.assert_close(logits, features @ state["attention_layer.attention_vector"])


# --- load_model ---------------------------------------------------------------------------


def test_load_model_reads_dimensions_and_weights(small_model_dir):
    path = small_model_dir / "pytorch_model.bin"
    model = load_model(path)
    state = torch.load(path, weights_only=True)
    assert not model.training
    assert model.vocab_size == state["embed.weight"].shape[0]
    assert model.lstm_0.weight_hh_l0.shape == state["lstm_0.weight_hh_l0"].shape
    batch = [[10, 11, 12], [13]]
    np.testing.assert_allclose(model.predict(batch), ReferenceDeepMoji(state).predict(batch), atol=1e-6, rtol=0)


def test_load_model_device_argument(small_model_dir):
    path = small_model_dir / "pytorch_model.bin"
    model = load_model(path, device="cpu")
    assert {parameter.device.type for parameter in model.parameters()} == {"cpu"}
    with pytest.raises(DeviceError, match="banana"):
        load_model(path, device="banana")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            load_model(path, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_probabilities(small_model_dir):
    path = small_model_dir / "pytorch_model.bin"
    batch = [[10, 11, 12], [13], [14, 15]]
    on_gpu = load_model(path, device="cuda")
    assert on_gpu.embed.weight.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.predict(batch), load_model(path).predict(batch), atol=1e-5, rtol=0)


def small_state() -> dict[str, torch.Tensor]:
    return seeded_state_dict(5, checkpoint_shapes(**SMALL))


def saved(tmp_path: Path, obj) -> Path:
    path = tmp_path / "weights.bin"
    torch.save(obj, path)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.bin: no such weights file"):
        load_model(tmp_path / "nope.bin")


def test_truncated_file(tmp_path):
    path = saved(tmp_path, small_state())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"weights\.bin: corrupt or truncated"):
        load_model(path)


@pytest.mark.parametrize(
    "content", [b"", b"hello world\n", np.random.default_rng(0).bytes(5000)], ids=["empty", "text", "random"]
)
def test_garbage_file(tmp_path, content):
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"weights\.bin: (corrupt|refused, corrupt)") as caught:
        load_model(path)
    assert "weights_only" not in str(caught.value)  # never torch's advice to turn the guard off


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(CheckpointError, match="is a folder"):
        load_model(tmp_path)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = small_state()
    del state["lstm_1.bias_hh_l0_reverse"]
    state["classifier.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError) as caught:
        load_model(saved(tmp_path, state))
    assert "lstm_1.bias_hh_l0_reverse" in str(caught.value)
    assert "classifier.weight" in str(caught.value)
    assert "weights.bin" in str(caught.value)


def test_wrong_shape_names_key_expected_and_found(tmp_path):
    state = small_state()
    state["lstm_1.weight_ih_l0"] = torch.zeros(32, 15)
    with pytest.raises(CheckpointError, match=r"lstm_1\.weight_ih_l0 has shape \(32, 15\), expected \(32, 16\)"):
        load_model(saved(tmp_path, state))


def test_dimensions_must_be_readable(tmp_path):
    state = small_state()
    del state["embed.weight"]
    with pytest.raises(CheckpointError, match="embed.weight is missing"):
        load_model(saved(tmp_path, state))


@pytest.mark.parametrize("content", [[torch.zeros(3)], torch.zeros(4), {"embed.weight": "text"}])
def test_not_a_state_dict(tmp_path, content):
    with pytest.raises(CheckpointError, match="not a state_dict"):
        load_model(saved(tmp_path, content))


def test_integer_tensors_are_refused(tmp_path):
    state = small_state()
    state["output_layer.0.bias"] = torch.zeros(64, dtype=torch.int64)
    with pytest.raises(CheckpointError, match="output_layer.0.bias has dtype torch.int64"):
        load_model(saved(tmp_path, state))


def test_an_archive_that_unpacks_to_more_than_its_size_is_refused_before_torch_load(tmp_path, monkeypatch):
    """A zip bomb: one record deflated from 64 MB of zeros, in a file of well under 1 MB."""
    genuine = saved(tmp_path, small_state())
    bomb = tmp_path / "bomb.bin"
    with zipfile.ZipFile(genuine) as source, zipfile.ZipFile(bomb, "w") as target:
        for record in source.infolist():
            data = source.read(record)
            if record.filename.endswith("/data/0"):
                target.writestr(record.filename, bytes(64_000_000), compress_type=zipfile.ZIP_DEFLATED)
            else:
                target.writestr(record, data)
    assert bomb.stat().st_size < 1_000_000

    def no_torch_load(*args, **kwargs):
        raise AssertionError("torch.load ran on a file that unpacks to 64 MB")

    monkeypatch.setattr(torch, "load", no_torch_load)
    with pytest.raises(
        CheckpointError, match=r"bomb\.bin: refused, its records would unpack to 64\.\d MB from a 0\.\d MB file"
    ):
        load_model(bomb)


def test_a_legacy_checkpoint_declaring_more_than_it_holds_is_refused(tmp_path):
    """The pre-zip format: a storage declared at 500 MB in a file of a few hundred bytes."""
    path = tmp_path / "legacy.bin"
    torch.save({"embed.weight": torch.zeros(10)}, path, _use_new_zipfile_serialization=False)
    raw = path.read_bytes()
    numel = b"K\nNtq"  # BININT1 10, then the storage tuple's end: the declared element count
    assert raw.count(numel) == 1
    path.write_bytes(raw.replace(numel, b"J" + (125_000_000).to_bytes(4, "little") + b"Ntq"))
    with pytest.raises(CheckpointError, match=r"legacy\.bin: corrupt or truncated"):
        load_model(path)


def test_a_genuine_archive_passes_the_size_check(tmp_path):
    path = saved(tmp_path, small_state())
    assert zipfile.is_zipfile(path)
    assert load_model(path).vocab_size == SMALL["vocab_size"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_weights_that_are_not_finite_are_refused_naming_the_tensor(tmp_path, value):
    state = small_state()
    state["lstm_1.weight_hh_l0"][3, 2] = value
    with pytest.raises(CheckpointError, match=r"lstm_1\.weight_hh_l0 has 1 of \d+ values that are NaN or infinite"):
        load_model(saved(tmp_path, state))
    state = small_state()
    state["embed.weight"].fill_(float("nan"))
    with pytest.raises(CheckpointError, match=r"embed\.weight has (\d+) of \1 values that are NaN"):
        load_model(saved(tmp_path, state))


class _Payload:
    """Pickles to a call that would create a file when unpickled without weights_only."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.bin"
    with path.open("wb") as handle:
        pickle.dump({"embed.weight": _Payload(marker)}, handle)
    with pytest.raises(CheckpointError, match="refused") as caught:
        load_model(path)
    assert isinstance(caught.value, WhymojiError)
    assert not marker.exists()
    torch.save({"embed.weight": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not marker.exists()


def test_token_groups_split_consecutively_within_the_limit():
    assert kernels_module.token_groups([3, 4, 5, 9, 1, 1], 8) == [(0, 2), (2, 3), (3, 4), (4, 6)]
    assert kernels_module.token_groups([2, 2], 8) == [(0, 2)]


def test_a_batch_over_the_token_limit_runs_in_parts_with_the_same_result(monkeypatch):
    batch = random_batch(np.random.default_rng(5), 9, 15, SMALL["vocab_size"])
    model = small_model(backend="torch")[0]
    whole = model.predict(batch)
    monkeypatch.setattr(model_module, "MAX_BATCH_TOKENS", 20)
    np.testing.assert_allclose(model.predict(batch), whole, atol=1e-6, rtol=0)
    np.testing.assert_allclose(model.predict(batch[3:5]), whole[3:5], atol=1e-6, rtol=0)
