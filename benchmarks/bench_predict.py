"""DeepMoji predict speed: the fast model against the plain reference, side by side in one run.

Everything runs on the same seeded weights at the published size (``seeded_state_dict(1)``):

* ``fast``: ``DeepMoji.predict`` on the torch path (``backend = "torch"``; the bot's default
  on a CPU is ONNX Runtime, measured by ``bench_runtimes.py``; run with
  ``MALLOC_MMAP_THRESHOLD_=4194304`` to match the bot's allocator setting, ``bot/startup.py``);
* ``reference, autograd``: the plain per-timestep reference (``bot/deepmoji/reference.py``,
  the original torchMoji port's computation structure) called as torchMoji's own scripts call
  their model: a plain forward call, autograd recording (they never use ``no_grad``);
* ``reference, inference``: the same reference under ``torch.inference_mode()``;
* ``floor``: only the fast model's matrix products for the message (both layers' input
  projections, then one ``h @ W_hh`` per later step), in the same order, nothing else: what
  any fp32 implementation of this recurrence has to pay on this machine with these GEMMs.

The machine is shared and noisy, so calls alternate between the implementations (the order
rotating) and every figure is a median: single messages call by call, corpus batches round by
round. Usage:

    .venv/bin/python -m benchmarks.bench_predict [--threads 1] [--rounds 5] [--repeats 10]

Single messages are random word ids of 12 and 30 tokens; batches are ``--messages`` corpus
messages (``../shared/corpus/messages.jsonl`` through the real tokenizer) in batches of
``--batch-size``, the same batches for every implementation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from bot.deepmoji.model import DeepMoji
from bot.deepmoji.reference import ReferenceDeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.deepmoji.tokenizer import Tokenizer

SHARED = Path(os.environ.get("WHYMOJI_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
FIRST_WORD_ID = 10  # ids below are DeepMoji's special tokens
LENGTHS = (12, 30)
#: The original torchMoji port on the 2-core development machine, as the issue reports it.
ORIGINAL_PORT = {"12 tokens, ms": 45.0, "messages/s": 240.0}
#: The targets of the issue that made this path fast, when it was the CPU default (before ONNX
#: Runtime), side by side against the plain reference.
TARGETS = {"12 tokens, ms": 5.0, "30 tokens, ms": 5.0, "messages/s": 3.0}
MEASURES = ("12 tokens, ms", "30 tokens, ms", "messages/s")
PREDICTORS = ("fast", "reference, autograd", "reference, inference")
FLOORS = ("floor",)
FAST = PREDICTORS[:1]
REFERENCES = PREDICTORS[1:]


def corpus_batches(count: int, batch_size: int, rng: np.random.Generator) -> list[list[list[int]]]:
    """``count`` random corpus messages with at least one token, as batches of id sequences."""
    corpus = SHARED / "corpus" / "messages.jsonl"
    if not corpus.is_file():
        raise SystemExit(f"bench_predict: needs the shared corpus at {corpus} (set WHYMOJI_SHARED)")
    lines = corpus.read_text(encoding="utf-8").splitlines()
    tokenizer = Tokenizer.from_file(SHARED / "deepmoji" / "vocabulary.json")
    messages: list[list[int]] = []
    for index in rng.permutation(len(lines)):
        ids = tokenizer.encode(json.loads(lines[index])["text"])
        if ids:
            messages.append(ids)
        if len(messages) == count:
            break
    return [messages[start : start + batch_size] for start in range(0, len(messages), batch_size)]


def random_ids(length: int, rng: np.random.Generator, vocab_size: int = 50_000) -> list[int]:
    return rng.integers(FIRST_WORD_ID, vocab_size, length).tolist()


def matmul_floor(model: DeepMoji, length: int) -> Callable[[list[list[int]]], None]:
    """The fast model's matrix products for one message of ``length`` tokens, and nothing else."""
    layers = (model.lstm_0.kernel_weights(), model.lstm_1.kernel_weights())
    inputs = [torch.zeros(length, weights.inputs.in_features) for weights in layers]
    h = torch.zeros(2, 1, layers[0].hidden.in_features)

    def run(_batch: list[list[int]]) -> None:
        with torch.inference_mode():
            for weights, rows in zip(layers, inputs):
                gates = weights.input_gates(rows.expand(2, *rows.shape))
                for step in range(1, length):
                    weights.hidden(h, add=gates[:, step : step + 1])

    return run


def seconds(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def rotated(items: Sequence, by: int) -> list:
    """``items`` starting at position ``by``, so no implementation always runs first."""
    by %= len(items)
    return list(items[by:]) + list(items[:by])


def timing_arguments(description: str, threads: str) -> argparse.ArgumentParser:
    """The options of a side-by-side predict benchmark: thread counts, rounds, corpus batches."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", default=threads, help=f"thread counts to compare, e.g. 1,2 (default: {threads})")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per figure")
    parser.add_argument("--repeats", type=int, default=10, help="single-message calls per round")
    parser.add_argument("--messages", type=int, default=128, help="corpus messages per round")
    parser.add_argument("--batch-size", type=int, default=64)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = timing_arguments(__doc__.splitlines()[0], threads="1").parse_args(argv)

    rng = np.random.default_rng(0)
    state = seeded_state_dict(1)
    fast = DeepMoji()
    fast.load_state_dict(state)
    fast.backend = "torch"  # this benchmark is about the torch path (bench_runtimes: ONNX Runtime)
    fast.eval()
    reference = ReferenceDeepMoji(state)
    batches = corpus_batches(args.messages, args.batch_size, rng)
    messages = sum(len(batch) for batch in batches)
    singles = {length: [random_ids(length, rng)] for length in LENGTHS}
    predictors: dict[str, Callable[[list[list[int]]], object]] = {
        "fast": fast.predict,
        "reference, autograd": lambda batch: reference(batch).detach().numpy(),
        "reference, inference": reference.predict,
    }
    tokens = [len(ids) for batch in batches for ids in batch]
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    print(
        f"corpus: {messages} messages (real tokenizer), mean {np.mean(tokens):.1f} tokens, "
        f"longest {max(tokens)}, batches of {args.batch_size}"
    )
    check_agreement(predictors, batches[0])
    floors = {length: {"floor": matmul_floor(fast, length)} for length in LENGTHS}

    figures: dict[tuple[str, int, str], list[float]] = {}
    thread_counts = [int(count) for count in args.threads.split(",")]
    calls = 0
    for _ in range(args.rounds):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for length, single in singles.items():
                measure = f"{length} tokens, ms"
                implementations = {**predictors, **floors[length]}
                for _ in range(args.repeats):
                    calls += 1
                    for name in rotated(list(implementations), calls):
                        ms = 1000 * seconds(lambda: implementations[name](single))
                        figures.setdefault((name, threads, measure), []).append(ms)
            calls += 1
            for name in rotated(PREDICTORS, calls):
                elapsed = seconds(lambda: [predictors[name](batch) for batch in batches])
                figures.setdefault((name, threads, "messages/s"), []).append(messages / elapsed)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    report({key: statistics.median(values) for key, values in figures.items()}, thread_counts, args)


def check_agreement(predictors: dict[str, Callable], batch: list[list[int]]) -> None:
    """Refuse to time implementations that do not compute the same thing."""
    results = {name: np.asarray(predict(batch)) for name, predict in predictors.items()}
    worst = max(float(np.abs(result - results["fast"]).max()) for result in results.values())
    if worst > 1e-5:
        raise SystemExit(f"bench_predict: the implementations disagree by {worst:.2e} on a corpus batch")
    print(f"agreement on a corpus batch: largest difference {worst:.1e}")


def print_medians(
    median: dict[tuple[str, int, str], float], names: Sequence[str], thread_counts: Sequence[int], args, width: int
) -> None:
    """The table of medians, one row per implementation and thread count (rows without figures left out)."""
    print(
        f"\nmedians: single messages over {args.rounds * args.repeats} alternating calls, "
        f"messages/s over {args.rounds} alternating rounds"
    )
    print(f"{'':{width}}" + "".join(f"{measure:>16}" for measure in MEASURES))
    for threads in thread_counts:
        for name in names:
            cells = [median.get((name, threads, measure)) for measure in MEASURES]
            if cells != [None] * len(MEASURES):
                print(
                    f"{f'{name} ({threads} thr)':{width}}"
                    + "".join(f"{'-' if v is None else f'{v:.1f}':>16}" for v in cells)
                )


def report(median: dict[tuple[str, int, str], float], thread_counts: Sequence[int], args) -> None:
    print_medians(median, PREDICTORS + FLOORS, thread_counts, args, width=32)
    for length in LENGTHS:
        flops, megabytes = arithmetic(length)
        floor_ms = median[("floor", thread_counts[0], f"{length} tokens, ms")]
        print(
            f"arithmetic, {length} tokens: {flops / 1e6:.0f} MFLOP, {megabytes:.0f} MB of weights read "
            f"(W_hh again at every step): {megabytes / floor_ms:.0f} GB/s at the floor's {floor_ms:.1f} ms"
        )
    print(
        f"{'original port (issue, not run here)':32}"
        + "".join(f"{ORIGINAL_PORT[m]:16.1f}" if m in ORIGINAL_PORT else f"{'-':>16}" for m in MEASURES)
    )

    print("\nspeed-ups (x), same thread count; target in brackets")
    for threads in thread_counts:
        for fast, floor in zip(FAST, FLOORS):
            for mode in REFERENCES:
                cells = [speedup(median[(fast, threads, m)], median[(mode, threads, m)], m) for m in MEASURES]
                verdicts = [
                    f"{value:7.1f} ({TARGETS[m]:.0f}) {'ok' if value >= TARGETS[m] else 'NO'}"
                    for value, m in zip(cells, MEASURES)
                ]
                print(f"{f'{fast} vs {mode} ({threads} thr)':50}" + "".join(verdicts))
            at_floor = [median[(floor, threads, m)] / median[(fast, threads, m)] for m in MEASURES[:2]]
            print(f"{f'{floor} / {fast} ({threads} thr), 1 = at it':50}" + "".join(f"{v:13.2f}" for v in at_floor))
        vs_original = [speedup(median[("fast", threads, m)], ORIGINAL_PORT[m], m) for m in ORIGINAL_PORT]
        print(
            f"{f'fast vs the issue original port ({threads} thr)':50}"
            + "".join(f"{v:13.1f}" for v in vs_original)
            + "   (12 tokens, messages/s; not run here: context only)"
        )


def arithmetic(length: int, embed_dim: int = 256, hidden_size: int = 512) -> tuple[float, float]:
    """(FLOP, MB of fp32 weights read) of one message's matrix products at the published size."""
    gates = 4 * hidden_size
    projections = (embed_dim + 2 * hidden_size) * 2 * gates  # both layers' W_ih, both directions
    recurrent = 2 * (length - 1) * 2 * hidden_size * gates  # both layers and directions, all steps but the first
    return 2.0 * (length * projections + recurrent), 4.0 * (projections + recurrent) / 1e6


def speedup(fast_value: float, other_value: float, measure: str) -> float:
    return fast_value / other_value if measure == "messages/s" else other_value / fast_value


if __name__ == "__main__":
    main()
