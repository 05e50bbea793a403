"""Attention word scores: the weight DeepMoji's attention layer gives each token, a cheap second view."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bot.deepmoji.kernels import PackedLayout, segment_softmax, validate_batch
from bot.deepmoji.model import DeepMoji


def attention(model: DeepMoji, ids: Sequence[int]) -> np.ndarray:
    """Attention weights [N] (float64, summing to 1) of the message ``ids``: one forward pass."""
    flat, lengths = validate_batch([ids], model.vocab_size)
    layout = PackedLayout.from_lengths(lengths, model.device)
    with torch.inference_mode():
        features = model.encode(torch.from_numpy(flat).to(model.device), layout)
        weights = segment_softmax(model.attention_logits(features), layout)
    return weights.double().cpu().numpy()
