"""Does the shown-words path (``bot.explain.shown``) pick the bold words exact scoring picks, and for how much work?

Corpus messages cut to ``--length`` tokens (real vocabulary, full-size DeepMoji with seeded
weights). Each is scored exactly (every word, ``bot.explain.occlusion``) and by the shown-words
path with each ``--windows`` estimate window. Per message and window:

* ``exact``: words the path scored exactly; ``checked``: whether its check held;
* ``same bold``: its bold words (``bot.explain.highlight``) are exact scoring's, and ``printed
  err``: the largest difference of a bold word's score from the exact one;
* ``err/mismatch``: the largest estimate error per unit of edge mismatch among the words the
  path did *not* score exactly, divided by the largest among those it did (what the check's
  ``SAFETY`` factor must cover for the words that matter);
* ``work``: variant positions computed (estimates ``N * 2W``, exact words ``N - 1`` each) over
  exact scoring's ``N (N - 1)``; ``time``: seconds over exact scoring's (one run each: noisy on
  a shared machine).

    .venv/bin/python -m benchmarks.shown_check [--length 64] [--messages 20] [--windows 8 16]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.bench_explain import SHARED
from benchmarks.explain_quality import corpus_ids
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.deepmoji.tokenizer import Tokenizer
from bot.explain.highlight import highlighted_indices
from bot.explain.occlusion import Occlusion
from bot.explain.shown import shown_steps
from bot.explain.steps import finish


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--windows", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    torch.set_num_threads(1)

    tokenizer = Tokenizer.from_file(SHARED / "deepmoji" / "vocabulary.json")
    model = DeepMoji()
    model.load_state_dict(seeded_state_dict(1))
    model.eval()
    messages = [ids[: args.length] for ids in corpus_ids(tokenizer, args.length, 10**6, args.messages, args.seed)]
    length = args.length
    print(f"{len(messages)} corpus messages cut to {length} tokens; seeded full-size DeepMoji, 1 thread")
    wrong = {window: 0 for window in args.windows}
    for ids in messages:
        start = time.perf_counter()
        occluded = finish(Occlusion.steps(model, ids))
        exact = finish(occluded.scores(np.arange(length))).scores
        exact_seconds = time.perf_counter() - start
        row = f"exact {exact_seconds:6.2f}s |"
        for window in args.windows:
            start = time.perf_counter()
            shown = finish(shown_steps(model, ids, window=window))
            seconds = time.perf_counter() - start
            estimated = finish(occluded.scores(np.arange(length), window))
            estimates_exact = estimated.mismatch == 0  # windows that reached both ends
            per_mismatch = np.abs(estimated.scores - exact) / np.where(estimates_exact, 1.0, estimated.mismatch)
            sampled = shown.exact & ~estimates_exact
            outside = per_mismatch[~shown.exact].max() if not shown.exact.all() else 0.0
            inside = per_mismatch[sampled].max() if sampled.any() else np.inf
            bold = highlighted_indices(shown.scores)
            same = bold == highlighted_indices(exact)
            wrong[window] += shown.checked and not same
            printed = max((abs(shown.scores[index] - exact[index]) for index in bold), default=0.0)
            work = (length * min(length - 1, 2 * window) + shown.exact.sum() * (length - 1)) / (length * (length - 1))
            row += (
                f" W{window}: exact {shown.exact.sum():3d} checked {'yes' if shown.checked else 'no':>3}"
                f" same bold {'yes' if same else 'NO':>3} printed err {printed:.0e}"
                f" err/mismatch {outside / inside:4.2f} work {work:4.2f}"
                f" time {seconds / exact_seconds:4.2f} |"
            )
        print(row, flush=True)
    for window, count in wrong.items():
        print(f"window {window}: {count} of {len(messages)} checks held with other bold words than exact scoring's")


if __name__ == "__main__":
    main()
