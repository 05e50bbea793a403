"""/why's time and exactness: what the bot runs for messages of every length, beside brute force.

The full-size DeepMoji with seeded weights (``seeded_state_dict(1)``) and the real vocabulary
(``shared/deepmoji/vocabulary.json``), behind an ``Engine`` that reads at most ``--max-tokens``
tokens, as the bot does. Messages: corpus texts cut to 12, 30, 60, 100, 127, 200 and 400 tokens,
the longest corpus message of at most 4,000 characters (Discord's longest), and 4,000 characters
of ``!?`` (4,000 tokens, the most a message can have). For each:

* ``reads``: the tokens the model reads (the cap), ``scoring``: how exact the scores are
  (``exact``: every word; ``exact-shown``: the words a reply can show, the rest estimated and
  checked), ``exact``: how many words got exact scores;
* ``seconds``: ``bot.explain.explain`` on the text (tokenizing included), the median of
  ``--rounds`` interleaved rounds; ``max slice``: the longest gap between two yields of
  ``explain_steps`` (what the worker waits before it can run a reaction batch);
* ``brute``: brute-force leave-one-out on what the model reads (``DeepMoji.predict`` on all
  N + 1 sequences, 32 at a time), same rounds; ``max |err|``: the largest difference between a
  shown (bold) word's score and brute force's, and ``same bold``: whether the bold words are
  the ones brute force's scores give.

``--compare`` adds, for the lengths read, exact scoring of every word against the shown-words
path with several estimate windows, side by side (how the default window was chosen).
``--scaling`` times exact scoring of every word at several lengths side by side, relative to the
longest: on a busy machine, the way to carry a figure measured on a quiet one (the issue's 2.5 s
for 100 tokens) over to other lengths. One torch thread unless ``--threads``. Usage:

    .venv/bin/python -m benchmarks.bench_explain [--max-tokens 50 64] [--compare 8 16 32] [--scaling 25 50 100]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bot.deepmoji.engine import DEFAULT_MAX_TOKENS, Engine
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.deepmoji.tokenizer import Tokenizer
from bot.explain import explain_steps
from bot.explain.highlight import highlighted_indices

SHARED = Path(os.environ.get("WHYMOJI_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
LENGTHS = (12, 30, 60, 100, 127, 200, 400)
PREDICT_BATCH = 32


def corpus_texts(tokenizer: Tokenizer) -> list[tuple[str, str]]:
    """(label, text): corpus texts cut to each of ``LENGTHS`` tokens, the longest corpus message
    of at most 4,000 characters, and 4,000 characters of ``!?``."""
    with open(SHARED / "corpus" / "messages.jsonl", encoding="utf-8") as lines:
        corpus = [json.loads(line)["text"] for line in lines]
    texts = []
    for length in LENGTHS:
        text = next(text for text in corpus if len(tokenizer.tokenize(text)) >= length)
        texts.append((f"{length}", text[: tokenizer.tokenize(text)[length - 1].end]))
    longest = max((text for text in corpus if len(text) <= 4000), key=len)
    texts.append((f"corpus {len(longest)} ch", longest))
    texts.append(("4000 ch !?", "!?" * 2000))
    return texts


def brute_force(model: DeepMoji, ids: list[int], top_k: int = 5) -> np.ndarray:
    """The definition: N + 1 predictions, ``PREDICT_BATCH`` sequences at a time."""
    p = model.predict([ids])[0].astype(np.float64)
    top = np.argsort(-p)[:top_k]
    if len(ids) == 1:
        return np.array([p[top].sum()])
    variants = [ids[:i] + ids[i + 1 :] for i in range(len(ids))]
    q = np.concatenate([model.predict(variants[i : i + PREDICT_BATCH]) for i in range(0, len(variants), PREDICT_BATCH)])
    return (p[top] - q[:, top]).sum(axis=1)


def run_steps(steps) -> tuple[object, float]:
    """Run ``explain_steps``' slices; (the explanation, the longest slice in seconds)."""
    longest, start = 0.0, time.perf_counter()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, max(longest, time.perf_counter() - start)
        now = time.perf_counter()
        longest, start = max(longest, now - start), now


def interleaved(methods: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[float, object]]:
    """name -> (median seconds, last result), every method once per round, so a busy spell of
    the shared machine hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    results: dict[str, object] = {}
    for _ in range(rounds):
        for name, method in methods.items():
            start = time.perf_counter()
            results[name] = method()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(times[name]), results[name]) for name in methods}


def shown_error(explanation, truth: np.ndarray) -> tuple[float, bool]:
    """Largest |score - brute force| over the bold words, and whether brute force bolds the same."""
    scores = [word.score for word in explanation.words]
    shown = highlighted_indices(scores)
    error = max((abs(scores[index] - truth[index]) for index in shown), default=0.0)
    return error, shown == highlighted_indices(truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-tokens", type=int, nargs="*", default=[DEFAULT_MAX_TOKENS], help="caps to measure (none: only --scaling)"
    )
    parser.add_argument(
        "--compare",
        type=int,
        nargs="*",
        default=[],
        metavar="WINDOW",
        help="also time exact scoring of every word against the shown-words path with these windows",
    )
    parser.add_argument(
        "--scaling",
        type=int,
        nargs="*",
        default=[],
        metavar="TOKENS",
        help="time exact scoring of every word at these lengths, side by side",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--brute-max", type=int, default=256, help="longest read for which brute force runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    tokenizer = Tokenizer.from_file(SHARED / "deepmoji" / "vocabulary.json")
    model = DeepMoji()
    model.load_state_dict(seeded_state_dict(1))
    model.eval()
    texts = corpus_texts(tokenizer)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); seeded full-size DeepMoji, "
        f"real vocabulary; seconds are medians of {args.rounds} interleaved rounds"
    )
    if args.scaling:
        scaling(model, tokenizer, args.scaling, args.rounds)
    for cap in args.max_tokens:
        engine = Engine(tokenizer, model, max_tokens=cap)
        run_steps(explain_steps(engine, texts[1][1]))  # warm up: projections, the kernels' shapes
        print(f"\nmodel.max_tokens = {cap}")
        print(
            f"{'message':>15} {'reads':>5} {'scoring':>12} {'exact':>5} {'seconds':>8} {'max slice':>9} "
            f"{'brute':>8} {'max |err|':>9} {'same bold':>9}"
        )
        measured_reads: set[int] = set()
        for label, text in texts:
            reads = len(engine.read(text).tokens)
            ids = engine.read(text).ids
            methods: dict[str, Callable[[], object]] = {"bot": lambda: run_steps(explain_steps(engine, text))}
            if reads <= args.brute_max:
                methods["brute"] = lambda: brute_force(model, ids)
            measured = interleaved(methods, args.rounds)
            seconds, (explanation, longest_slice) = measured["bot"]
            exact = sum(word.exact for word in explanation.words)
            row = (
                f"{label:>15} {reads:>5} {explanation.scoring:>12} {exact:>5} {seconds:8.3f} "
                f"{longest_slice * 1e3:7.0f}ms"
            )
            if "brute" in measured:
                brute_seconds, truth = measured["brute"]
                error, same = shown_error(explanation, truth)
                row += f" {brute_seconds:8.3f} {error:9.1e} {'yes' if same else 'NO':>9}"
            print(row, flush=True)
            if args.compare and reads not in measured_reads:
                measured_reads.add(reads)
                compare(engine, text, args.compare, args.rounds)


def scaling(model: DeepMoji, tokenizer: Tokenizer, lengths: list[int], rounds: int) -> None:
    """Exact scoring of every word of ``!?`` texts of ``lengths`` tokens, side by side."""
    text = "!?" * (max(lengths) // 2 + 1)

    def every_word(length: int) -> Callable[[], object]:
        engine = Engine(tokenizer, model, max_tokens=length)
        return lambda: run_steps(explain_steps(engine, text, exact_max_tokens=length))

    measured = interleaved({str(length): every_word(length) for length in lengths}, rounds)
    longest = measured[str(max(lengths))][0]
    print(f"\nevery word exact, side by side (relative to {max(lengths)} tokens):")
    for length, (seconds, _) in measured.items():
        print(f"{length:>6} tokens {seconds:8.3f}s  {seconds / longest:5.3f}x", flush=True)


def compare(engine: Engine, text: str, windows: list[int], rounds: int) -> None:
    """Exact scoring of every word against the shown-words path with ``windows``, side by side."""
    methods = {"every word exact": lambda: run_steps(explain_steps(engine, text, exact_max_tokens=10**9))}
    for window in windows:
        methods[f"shown, window {window}"] = lambda window=window: run_steps(
            explain_steps(engine, text, exact_max_tokens=0, window=window)
        )
    measured = interleaved(methods, rounds)
    base = measured["every word exact"][0]
    for name, (seconds, (explanation, longest_slice)) in measured.items():
        exact = sum(word.exact for word in explanation.words)
        print(
            f"{'':>15} {'':>5} {name:>22} {exact:>4} exact {seconds:8.3f}s ({seconds / base:4.2f}x) "
            f"slice {longest_slice * 1e3:4.0f}ms {explanation.scoring}",
            flush=True,
        )


if __name__ == "__main__":
    main()
