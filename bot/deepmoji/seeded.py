"""Seeded random weights in the published checkpoint's format.

The real pretrained weights cannot be fetched everywhere (CI has no internet), so tests and
benchmarks build deterministic stand-ins: ``numpy.random.default_rng(seed)`` normal draws,
scaled per tensor, drawn in checkpoint key order. With the defaults this is exactly the recipe
in ``shared/conformance/model.json``; smaller dimensions give small models for fast tests.
"""

from __future__ import annotations

import numpy as np
import torch

from bot.deepmoji.architecture import checkpoint_shapes

#: Scale of each tensor's normal draw, by kind; the conformance recipe uses these values.
DEFAULT_SCALES = {
    "embed": 0.5,
    "lstm_weight": 0.08,
    "lstm_bias": 0.1,
    "attention": 0.1,
    "output_weight": 0.3,
    "output_bias": 0.1,
}


def _scale_kind(name: str) -> str:
    if name.startswith("embed"):
        return "embed"
    if name.startswith("lstm_"):
        return "lstm_bias" if ".bias_" in name else "lstm_weight"
    if name.startswith("attention_layer"):
        return "attention"
    return "output_bias" if name.endswith("bias") else "output_weight"


def seeded_state_dict(
    seed: int = 1,
    shapes: dict[str, tuple[int, ...]] | None = None,
    scales: dict[str, float] | None = None,
) -> dict[str, torch.Tensor]:
    """Draw every tensor of ``shapes`` (default: the published sizes) from one seeded RNG."""
    shapes = checkpoint_shapes() if shapes is None else shapes
    scales = {**DEFAULT_SCALES, **(scales or {})}
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in shapes.items():
        draw = rng.standard_normal(shape, dtype=np.float32) * np.float32(scales[_scale_kind(name)])
        state[name] = torch.from_numpy(draw)
    return state
