"""whymoji's engine against ONNX Runtime as a user would run it, side by side in one run.

Everything runs on the same seeded full-size weights (``seeded_state_dict(1)``):

* ``whymoji``: ``DeepMoji.predict`` as the bot, the library and the CLI run it (its default
  backend: ONNX Runtime over the graph of ``bot/deepmoji/onnx_graph.py``, batches split into
  length groups by ``bot/deepmoji/runtime.py``);
* ``whymoji int8``: the same with ``precision="int8"`` (``model.precision = "int8"``);
* ``whymoji torch``: ``DeepMoji.predict`` with ``backend = "torch"`` (context: the engine before;
  one thread only, see :func:`implementations`);
* ``ORT``: the recipe a user would follow, built here by code of its own (:func:`baseline_graph`,
  nothing shared with the engine's graph builder): the state_dict written as an ONNX graph with
  ``onnx.helper`` (embedding ``Gather`` + ``Tanh``, the standard ``LSTM`` operator with
  hard-sigmoid gates, attention, output layer, softmax), a session with default options and
  the thread count, **one message per call**, as the issue measured it;
* ``ORT padded``: the same session fed whole batches padded to their longest message (with
  ``sequence_lens`` and an attention mask): the fair batched comparison (corpus only);
* ``ORT int8``: the baseline graph after ``quantize_dynamic`` of its LSTM weights, one message
  per call.

``onnx.helper`` rather than ``torch.onnx``: our torch forward is a hand-written packed
recurrence, which an exporter would trace into a loop of small ops; the issue's recipe is the
``LSTM`` operator.

The machine is shared and noisy, so calls alternate between the implementations (the order
rotating) and every figure is a median: single messages call by call, corpus batches round by
round. Ratios are whymoji's speed over ORT's (above 1: whymoji is faster). Usage:

    .venv/bin/python -m benchmarks.bench_runtimes [--threads 1,2] [--rounds 5] [--repeats 10]

Single messages are random word ids of 12 and 30 tokens; corpus batches are ``--messages``
messages of ``../shared/corpus/messages.jsonl`` (real tokenizer, at most the default
``model.max_tokens`` tokens each, as the engine reads them) in batches of ``--batch-size``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from benchmarks.bench_predict import (
    LENGTHS,
    MEASURES,
    corpus_batches,
    print_medians,
    random_ids,
    rotated,
    seconds,
    timing_arguments,
)
from bot.deepmoji.engine import DEFAULT_MAX_TOKENS
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.seeded import seeded_state_dict

WHYMOJI = ("whymoji", "whymoji int8", "whymoji torch")
BASELINES = ("ORT", "ORT padded", "ORT int8")
#: Each whymoji figure against the ONNX Runtime figure it answers.
PAIRS = (("whymoji", "ORT"), ("whymoji", "ORT padded"), ("whymoji int8", "ORT int8"), ("whymoji torch", "ORT"))


def baseline_graph(state: dict[str, np.ndarray]) -> onnx.ModelProto:
    """DeepMoji with the standard ONNX ``LSTM`` operator, written independently of the engine's builder."""
    hidden = state["lstm_0.weight_hh_l0"].shape[1]
    tensors = []

    def tensor(name: str, array: np.ndarray) -> str:
        tensors.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=array.dtype), name))
        return name

    def onnx_order(rows: np.ndarray) -> np.ndarray:  # torch i, f, g, o -> ONNX i, o, f, c
        i, f, g, o = np.split(rows, 4)
        return np.concatenate([i, o, f, g])

    nodes = [
        helper.make_node("Gather", [tensor("embedding", state["embed.weight"]), "ids"], ["rows"]),
        helper.make_node("Tanh", ["rows"], ["x0"]),
    ]
    layer_input = "x0"
    tensor("flatten_directions", np.array([0, 0, -1], dtype=np.int64))
    for layer in (0, 1):
        keys = [f"lstm_{layer}.{{}}_l0{suffix}" for suffix in ("", "_reverse")]
        w = np.stack([onnx_order(state[key.format("weight_ih")]) for key in keys])
        r = np.stack([onnx_order(state[key.format("weight_hh")]) for key in keys])
        b = np.stack(
            [
                np.concatenate([onnx_order(state[key.format("bias_ih")]), onnx_order(state[key.format("bias_hh")])])
                for key in keys
            ]
        )
        nodes += [
            helper.make_node(
                "LSTM",
                [layer_input, tensor(f"w{layer}", w), tensor(f"r{layer}", r), tensor(f"b{layer}", b), "sequence_lens"],
                [f"y{layer}"],
                direction="bidirectional",
                hidden_size=hidden,
                activations=["HardSigmoid", "Tanh", "Tanh"] * 2,
                activation_alpha=[0.2, 0.2],
                activation_beta=[0.5, 0.5],
            ),
            helper.make_node("Transpose", [f"y{layer}"], [f"t{layer}"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [f"t{layer}", "flatten_directions"], [f"h{layer}"]),
        ]
        layer_input = f"h{layer}"
    nodes += [
        helper.make_node("Concat", ["h1", "h0", "x0"], ["features"], axis=2),
        helper.make_node(
            "MatMul", ["features", tensor("attention", state["attention_layer.attention_vector"][:, None])], ["scores"]
        ),
        helper.make_node("Add", ["scores", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["weights"], axis=0),
        helper.make_node("Mul", ["features", "weights"], ["weighted"]),
        helper.make_node(
            "ReduceSum", ["weighted", tensor("time", np.array([0], dtype=np.int64))], ["pooled"], keepdims=0
        ),
        helper.make_node(
            "Gemm",
            [
                "pooled",
                tensor("out_w", state["output_layer.0.weight"].T),
                tensor("out_b", state["output_layer.0.bias"]),
            ],
            ["logits"],
        ),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "deepmoji_baseline",
        [
            helper.make_tensor_value_info("ids", TensorProto.INT64, ["T", "B"]),
            helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, ["B"]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["T", "B", 1]),
        ],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["B", 64])],
        tensors,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def baseline_int8(graph: onnx.ModelProto) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as folder:
        quantize_dynamic(graph, Path(folder) / "int8.onnx", op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8)
        return onnx.load(Path(folder) / "int8.onnx")


def baseline_session(graph: onnx.ModelProto, threads: int) -> Callable[[list[list[int]]], np.ndarray]:
    """A default-options session with ``threads`` intra-op threads; the callable runs one padded batch."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def run(batch: list[list[int]]) -> np.ndarray:
        lengths = np.array([len(ids) for ids in batch], dtype=np.int32)
        ids = np.zeros((lengths.max(), len(batch)), dtype=np.int64)
        for column, row in enumerate(batch):
            ids[: len(row), column] = row
        mask = np.where(np.arange(lengths.max())[:, None] < lengths, 0.0, -np.inf).astype(np.float32)[:, :, None]
        return session.run(["probs"], {"ids": ids, "sequence_lens": lengths, "mask": mask})[0]

    return run


def one_per_call(run: Callable[[list[list[int]]], np.ndarray]) -> Callable[[list[list[int]]], np.ndarray]:
    return lambda batch: np.concatenate([run([ids]) for ids in batch])


def with_threads(threads: int, predict: Callable) -> Callable:
    """``predict`` run with torch (and so whymoji's ONNX Runtime session) at ``threads`` threads."""

    def run(batch):
        torch.set_num_threads(threads)
        return predict(batch)

    return run


def implementations(state: dict[str, torch.Tensor], threads: int) -> dict[str, Callable[[list[list[int]]], np.ndarray]]:
    """Every implementation at ``threads`` threads; whymoji's models are one per thread count
    (their session follows torch's thread setting and is rebuilt when it changes). The torch
    path runs at one thread only: with more, its OpenMP threads spin after each call and slow
    whatever is timed next (bench_threads.py measures that)."""
    model, torch_model = DeepMoji(), DeepMoji()
    for each in (model, torch_model):
        each.load_state_dict(state)
        each.eval()
    torch_model.backend = "torch"
    arrays = {key: value.numpy() for key, value in state.items()}
    graph = baseline_graph(arrays)
    padded = baseline_session(graph, threads)
    runs = {
        "whymoji": with_threads(threads, model.predict),
        "whymoji int8": with_threads(threads, lambda batch: model.predict(batch, precision="int8")),
        "whymoji torch": with_threads(1, torch_model.predict),
        "ORT": one_per_call(padded),
        "ORT padded": padded,
        "ORT int8": one_per_call(baseline_session(baseline_int8(graph), threads)),
    }
    if threads != 1:
        del runs["whymoji torch"]
    return runs


def agreement(predictors: dict[str, Callable], original: Callable, batches: list[list[list[int]]]) -> None:
    """Print each implementation's max |diff| and top-1 agreement against ``original`` (the torch path)."""
    for name, predict in predictors.items():
        differences, same = [], []
        for batch in batches:
            rows, expected = predict(batch), original(batch)
            differences.append(np.abs(rows - expected).max())
            same.extend(rows.argmax(1) == expected.argmax(1))
        print(f"  {name:16} {max(differences):.1e}   {np.mean(same):.0%}")


def main(argv: Sequence[str] | None = None) -> None:
    args = timing_arguments(__doc__.splitlines()[0], threads="1,2").parse_args(argv)

    rng = np.random.default_rng(0)
    state = seeded_state_dict(1)
    batches = [
        [ids[:DEFAULT_MAX_TOKENS] for ids in batch] for batch in corpus_batches(args.messages, args.batch_size, rng)
    ]
    messages = sum(len(batch) for batch in batches)
    singles = {length: [random_ids(length, rng)] for length in LENGTHS}
    thread_counts = [int(count) for count in args.threads.split(",")]
    tokens = [len(ids) for batch in batches for ids in batch]
    print(
        f"onnxruntime {ort.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    print(
        f"corpus: {messages} messages, mean {np.mean(tokens):.1f} tokens, longest {max(tokens)}, batches of {args.batch_size}"
    )

    predictors = {threads: implementations(state, threads) for threads in thread_counts}
    print("\nagreement with the torch path on a corpus batch and the two single messages (max |diff|, top-1 same):")
    original = DeepMoji()
    original.load_state_dict(state)
    original.backend = "torch"
    agreement(predictors[thread_counts[0]], original.eval().predict, [batches[0], *singles.values()])

    figures: dict[tuple[str, int, str], list[float]] = {}
    calls = 0
    for _ in range(args.rounds):
        for threads in thread_counts:
            run = predictors[threads]
            for length, single in singles.items():
                measure = f"{length} tokens, ms"
                names = [name for name in run if name != "ORT padded"]
                for _ in range(args.repeats):
                    calls += 1
                    for name in rotated(names, calls):
                        figures.setdefault((name, threads, measure), []).append(
                            1000 * seconds(lambda: run[name](single))
                        )
            calls += 1
            for name in rotated(list(run), calls):
                elapsed = seconds(lambda: [run[name](batch) for batch in batches])
                figures.setdefault((name, threads, "messages/s"), []).append(messages / elapsed)
    torch.set_num_threads(thread_counts[0])
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    report({key: statistics.median(values) for key, values in figures.items()}, thread_counts, args)


def report(median: dict[tuple[str, int, str], float], thread_counts: Sequence[int], args) -> None:
    print_medians(median, WHYMOJI + BASELINES, thread_counts, args, width=28)
    print("\nspeed ratios, same thread count (above 1: the first is faster)")
    for threads in thread_counts:
        for ours, theirs in PAIRS:
            if (ours, threads, MEASURES[0]) not in median:
                continue
            cells = []
            for measure in MEASURES:
                a, b = median.get((ours, threads, measure)), median.get((theirs, threads, measure))
                ratio = None if a is None or b is None else (a / b if measure == "messages/s" else b / a)
                cells.append(f"{'-' if ratio is None else f'{ratio:.2f}x':>16}")
            print(f"{f'{ours} / {theirs} ({threads} thr)':40}" + "".join(cells))


if __name__ == "__main__":
    main()
