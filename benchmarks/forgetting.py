"""How far the model carries a left-out word: the gap between a variant's states and the full message's.

For corpus messages (real vocabulary) and a few gap positions, the variant without the word at
the gap is run whole (``run_bilstm``) and compared with the full message, position by position
after the gap (forward directions) and before it (layer 1 backward): the largest absolute
difference of the hidden state, by distance from the gap. An exact-to-a-tolerance "adaptive
window" can stop recomputing a variant once this is below the tolerance, so this says what such
windows would cost. Seeded weights by default; ``--weights`` for a real checkpoint.

    .venv/bin/python -m benchmarks.forgetting [--messages 4] [--weights pytorch_model.bin]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.bench_explain import SHARED
from benchmarks.explain_quality import corpus_ids
from bot.deepmoji.checkpoint import load_model
from bot.deepmoji.kernels import PackedLayout, run_bilstm
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.deepmoji.tokenizer import Tokenizer

DISTANCES = (0, 8, 16, 24, 32, 48, 64, 80)


def hidden_states(model: DeepMoji, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Layer 0 and layer 1 outputs [N, 2H] (forward half, backward half) of one sequence."""
    layout = PackedLayout.from_lengths([len(ids)])
    with torch.inference_mode():
        layer_0 = run_bilstm(model.lstm_0.kernel_weights(), model.embedded(torch.tensor(ids)), layout)
        layer_1 = run_bilstm(model.lstm_1.kernel_weights(), layer_0, layout)
    return layer_0.numpy(), layer_1.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--weights", help="a DeepMoji checkpoint (default: seeded weights)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.weights:
        model = load_model(args.weights)
    else:
        model = DeepMoji()
        model.load_state_dict(seeded_state_dict(1))
        model.eval()
    size = model.lstm_0.weight_hh_l0.shape[1]
    tokenizer = Tokenizer.from_file(SHARED / "deepmoji" / "vocabulary.json")
    messages = [ids[: args.length] for ids in corpus_ids(tokenizer, args.length, 10**6, args.messages, 0)]
    gaps = {"layer 0 forward": [], "layer 1 forward": [], "layer 1 backward": []}
    for ids in messages:
        full_0, full_1 = hidden_states(model, ids)
        for gap in (args.length // 4, args.length // 2):
            variant_0, variant_1 = hidden_states(model, ids[:gap] + ids[gap + 1 :])
            # Variant position j >= gap is the full message's j + 1; before the gap they align.
            gaps["layer 0 forward"].append(np.abs(variant_0[gap:, :size] - full_0[gap + 1 :, :size]).max(axis=1))
            gaps["layer 1 forward"].append(np.abs(variant_1[gap:, :size] - full_1[gap + 1 :, :size]).max(axis=1))
            gaps["layer 1 backward"].append(np.abs(variant_1[:gap, size:] - full_1[:gap, size:]).max(axis=1)[::-1])
    print(
        f"{len(messages)} corpus messages of {args.length} tokens, gaps at {args.length // 4} and "
        f"{args.length // 2}; largest |h variant - h full| over the messages, by distance from the gap"
    )
    print(f"{'':>17}" + "".join(f"{distance:>9}" for distance in DISTANCES))
    for name, rows in gaps.items():
        cells = [max((row[d] for row in rows if d < len(row)), default=np.nan) for d in DISTANCES]
        print(f"{name:>17}" + "".join(f"{cell:9.0e}" for cell in cells))


if __name__ == "__main__":
    main()
