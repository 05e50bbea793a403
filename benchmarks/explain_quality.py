"""How the cheaper word rankings compare with exact occlusion, on corpus messages.

Messages come from ``shared/corpus/messages.jsonl`` (tokenized with the real vocabulary), the
model is the full-size DeepMoji with seeded weights (``seeded_state_dict(1)``), so the figures
describe the methods, not the published model's opinions. For each method:

* agreement with exact occlusion: Spearman rank correlation (mean over messages), top-1 (same
  best word) and top-3 (share of exact occlusion's 3 best words also in the method's 3 best);
* the deletion curve: remove the method's 1, 2, 3 best words (cumulatively) and measure the
  drop of the original top-5 emojis' probability mass; a steeper drop means the ranking found
  the words that matter. ``random`` is the baseline ranking.

Short messages (4-40 tokens) compare ``attention`` and short windows; long messages (over
``EXACT_MAX_TOKENS``, where ``explain`` estimates the words it does not show) compare the windows
of those estimates.

    .venv/bin/python benchmarks/explain_quality.py [--messages 200] [--long 6]
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bot.deepmoji.model import DeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.deepmoji.tokenizer import Tokenizer
from bot.explain import EXACT_MAX_TOKENS, LONG_MESSAGE_WINDOW, attention, occlusion

SHARED = Path(os.environ.get("WHYMOJI_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
DELETIONS = (1, 2, 3)


def corpus_ids(tokenizer: Tokenizer, low: int, high: int, count: int, seed: int) -> list[list[int]]:
    """``count`` messages of ``low``..``high`` tokens, drawn reproducibly from the corpus."""
    with open(SHARED / "corpus" / "messages.jsonl", encoding="utf-8") as lines:
        encoded = [tokenizer.encode(json.loads(line)["text"]) for line in lines]
    fitting = [ids for ids in encoded if low <= len(ids) <= high]
    chosen = np.random.default_rng(seed).choice(len(fitting), size=min(count, len(fitting)), replace=False)
    return [fitting[index] for index in sorted(chosen)]


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share), for Spearman's correlation without scipy."""
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    ranked[order] = np.arange(len(values))
    for value in np.unique(values):
        tied = values == value
        ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def top_agreement(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Share of the k best words of ``b`` that are also among the k best of ``a``."""
    return len(set(np.argsort(-a)[:k]) & set(np.argsort(-b)[:k])) / k


def deletion_drops(model: DeepMoji, ids: list[int], scores: np.ndarray) -> list[float]:
    """Drop of the top-5 probability mass after removing the 1, 2, 3 best-scored words."""
    p = model.predict([ids])[0]
    top = np.argsort(-p)[:5]
    order = np.argsort(-scores, kind="stable")
    variants = [[token for index, token in enumerate(ids) if index not in set(order[:k])] for k in DELETIONS]
    q = model.predict(variants)
    return (p[top].sum() - q[:, top].sum(axis=1)).tolist()


def evaluate(
    model: DeepMoji, messages: list[list[int]], methods: dict[str, Callable[[list[int]], np.ndarray]]
) -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, list[float]]] = {name: {} for name in methods}
    for ids in messages:
        exact = occlusion(model, ids)
        for name, method in methods.items():
            scores = exact if name == "occlusion" else method(ids)
            row = table[name]
            row.setdefault("spearman", []).append(spearman(scores, exact))
            row.setdefault("top-1", []).append(float(np.argmax(scores) == np.argmax(exact)))
            row.setdefault("top-3", []).append(top_agreement(scores, exact, 3))
            for k, drop in zip(DELETIONS, deletion_drops(model, ids, scores)):
                row.setdefault(f"drop@{k}", []).append(drop)
    return {name: {key: float(np.nanmean(values)) for key, values in row.items()} for name, row in table.items()}


def print_table(title: str, results: dict[str, dict[str, float]]) -> None:
    columns = ["spearman", "top-1", "top-3"] + [f"drop@{k}" for k in DELETIONS]
    print(f"\n{title}")
    print(f"| method | {' | '.join(columns)} |")
    print(f"|---|{'---:|' * len(columns)}")
    for name, row in results.items():
        print(f"| {name} | {' | '.join(f'{row[column]:.3f}' for column in columns)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200, help="short messages (4-40 tokens)")
    parser.add_argument("--long", type=int, default=6, help=f"long messages (over {EXACT_MAX_TOKENS} tokens)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    tokenizer = Tokenizer.from_file(SHARED / "deepmoji" / "vocabulary.json")
    model = DeepMoji()
    model.load_state_dict(seeded_state_dict(1))
    model.eval()
    rng = np.random.default_rng(args.seed)
    random_scores = lambda ids: rng.permutation(len(ids)).astype(float)  # noqa: E731

    short = corpus_ids(tokenizer, 4, 40, args.messages, args.seed)
    print(
        f"seeded full-size DeepMoji; {len(short)} corpus messages of 4-40 tokens "
        f"(mean {np.mean([len(ids) for ids in short]):.1f})"
    )
    print_table(
        "Short messages: each ranking against exact occlusion, and its deletion curve",
        evaluate(
            model,
            short,
            {
                "occlusion": None,
                "attention": lambda ids: attention(model, ids),
                "window 2": lambda ids: occlusion(model, ids, window=2),
                "window 4": lambda ids: occlusion(model, ids, window=4),
                "random": random_scores,
            },
        ),
    )
    if args.long:
        long = corpus_ids(tokenizer, EXACT_MAX_TOKENS + 1, 400, args.long, args.seed)
        print(
            f"\n{len(long)} corpus messages of {EXACT_MAX_TOKENS + 1}-400 tokens "
            f"(mean {np.mean([len(ids) for ids in long]):.0f})"
        )
        print_table(
            "Long messages: windows against exact occlusion",
            evaluate(
                model,
                long,
                {
                    "occlusion": None,
                    "window 8": lambda ids: occlusion(model, ids, window=8),
                    f"window {LONG_MESSAGE_WINDOW} (the bot's)": lambda ids: occlusion(
                        model, ids, window=LONG_MESSAGE_WINDOW
                    ),
                    "window 32": lambda ids: occlusion(model, ids, window=32),
                    "attention": lambda ids: attention(model, ids),
                    "random": random_scores,
                },
            ),
        )


if __name__ == "__main__":
    main()
