"""DeepMoji predict speed: the fast model against the plain reference, side by side in one run.

Both run on the same seeded weights at the published size (``seeded_state_dict(1)``), under
each torch thread count asked for. Runs alternate between the two implementations and every
figure is the median over the rounds, because the machine is shared and noisy.

    .venv/bin/python -m benchmarks.bench_predict [--threads 1,2] [--rounds 5]

Prints ms per message for one message of 12 and of 30 tokens, messages/s over corpus
messages (``../shared/corpus/messages.jsonl``, tokenized with the real tokenizer when it is
there, else random ids with the corpus' word counts), and the fast/reference ratios.
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

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIRST_WORD_ID = 10  # ids below are DeepMoji's special tokens


def corpus_batch(count: int, rng: np.random.Generator) -> tuple[list[list[int]], str]:
    """``count`` corpus messages as id sequences, and how they were made."""
    lines = (SHARED / "corpus" / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(lines[index])["text"] for index in rng.choice(len(lines), count, replace=False)]
    try:
        from bot.deepmoji.tokenizer import Tokenizer
    except ImportError:
        return [random_ids(max(1, len(text.split())), rng) for text in texts], "random ids, corpus word counts"
    tokenizer = Tokenizer.from_file(SHARED / "deepmoji" / "vocabulary.json")
    encoded = [tokenizer.encode(text) for text in texts]
    return [ids for ids in encoded if ids], "real tokenizer"


def random_ids(length: int, rng: np.random.Generator, vocab_size: int = 50_000) -> list[int]:
    return rng.integers(FIRST_WORD_ID, vocab_size, length).tolist()


def seconds(run: Callable[[], object]) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def batched(model, messages: Sequence[Sequence[int]], batch_size: int) -> Callable[[], None]:
    def run() -> None:
        for start in range(0, len(messages), batch_size):
            model.predict(messages[start : start + batch_size])

    return run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="torch thread counts to compare, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per figure")
    parser.add_argument("--repeats", type=int, default=10, help="single-message calls per round")
    parser.add_argument("--messages", type=int, default=256, help="corpus messages for the fast model")
    parser.add_argument("--reference-messages", type=int, default=64, help="corpus messages for the reference")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    state = seeded_state_dict(1)
    fast = DeepMoji()
    fast.load_state_dict(state)
    fast.eval()
    reference = ReferenceDeepMoji(state)
    messages, source = corpus_batch(args.messages, rng)
    reference_messages = messages[: args.reference_messages]
    singles = {length: [random_ids(length, rng)] for length in (12, 30)}
    print(f"load average {os.getloadavg()[0]:.1f} at the start; torch {torch.__version__}; corpus batch: {len(messages)} messages ({source}), "
          f"mean {np.mean([len(m) for m in messages]):.1f} tokens; batch size {args.batch_size}")

    fast.predict(messages[: args.batch_size])  # builds the derived-weight caches
    models = {"fast": fast, "reference": reference}
    samples = {"fast": messages, "reference": reference_messages}
    figures: dict[tuple[str, int, str], list[float]] = {}
    thread_counts = [int(count) for count in args.threads.split(",")]
    for _ in range(args.rounds):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for length, single in singles.items():
                for _ in range(args.repeats):  # call by call, so both see the same noise
                    for name, model in models.items():
                        ms = 1000 * seconds(lambda: model.predict(single))
                        figures.setdefault((name, threads, f"{length} tokens, ms"), []).append(ms)
            for name, model in models.items():
                elapsed = seconds(batched(model, samples[name], args.batch_size))
                figures.setdefault((name, threads, "messages/s"), []).append(len(samples[name]) / elapsed)

    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    median = {key: statistics.median(values) for key, values in figures.items()}
    measures = ("12 tokens, ms", "30 tokens, ms", "messages/s")
    print(f"\nmedians: single messages over {args.rounds * args.repeats} alternating calls, "
          f"messages/s over {args.rounds} alternating rounds")
    print(f"{'':22}" + "".join(f"{measure:>16}" for measure in measures))
    for threads in thread_counts:
        for name in ("fast", "reference"):
            row = "".join(f"{median[(name, threads, measure)]:16.1f}" for measure in measures)
            print(f"{name + f' ({threads} thr)':22}{row}")

    print("\nspeed-up of fast over reference (x)")
    best_reference = {measure: best(median, "reference", thread_counts, measure) for measure in measures}
    for threads in thread_counts:
        same = [ratio(median, measure, median[("reference", threads, measure)], threads) for measure in measures]
        print(f"{f'fast {threads} thr vs reference {threads} thr':38}" + "".join(f"{value:10.1f}" for value in same))
        vs_best = [ratio(median, measure, best_reference[measure], threads) for measure in measures]
        print(f"{f'fast {threads} thr vs best reference':38}" + "".join(f"{value:10.1f}" for value in vs_best))


def best(median: dict, name: str, thread_counts: Sequence[int], measure: str) -> float:
    values = [median[(name, threads, measure)] for threads in thread_counts]
    return max(values) if measure == "messages/s" else min(values)


def ratio(median: dict, measure: str, reference_value: float, threads: int) -> float:
    fast_value = median[("fast", threads, measure)]
    return fast_value / reference_value if measure == "messages/s" else reference_value / fast_value


if __name__ == "__main__":
    main()
