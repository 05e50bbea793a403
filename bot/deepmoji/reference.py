"""A plain DeepMoji: one sequence at a time, one time step at a time, straight from a state_dict.

Written for reading, not for speed: it is the oracle the fast model in ``model.py`` is tested
against and the baseline ``benchmarks/bench_predict.py`` measures it against. Every formula
is spelled out as in the DeepMoji paper's architecture, with the checkpoint's gate order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras' hard sigmoid, which DeepMoji's LSTM gates use instead of the logistic sigmoid."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class ReferenceDeepMoji:
    """DeepMoji computed step by step with Python loops; ``predict`` has the fast model's API."""

    def __init__(self, state_dict: Mapping[str, Tensor]) -> None:
        self.weights = {name: tensor.detach().float().cpu() for name, tensor in state_dict.items()}

    @torch.no_grad()
    def predict(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Probabilities [B, num_classes], each row computed alone."""
        return np.stack([self.predict_one(ids).numpy() for ids in batch])

    def predict_one(self, ids: Sequence[int]) -> Tensor:
        if len(ids) == 0:
            raise ValueError("cannot predict an empty sequence")
        embedded = torch.tanh(self.weights["embed.weight"][torch.tensor(list(ids))])
        layer_0 = self._bidirectional("lstm_0", embedded)
        layer_1 = self._bidirectional("lstm_1", layer_0)
        features = torch.cat([layer_1, layer_0, embedded], dim=1)
        attention = torch.softmax(features @ self.weights["attention_layer.attention_vector"], dim=0)
        pooled = attention @ features
        logits = self.weights["output_layer.0.weight"] @ pooled + self.weights["output_layer.0.bias"]
        return torch.softmax(logits, dim=0)

    def _bidirectional(self, layer: str, inputs: Tensor) -> Tensor:
        """Outputs [T, 2H]: the forward pass and the backward pass, side by side per position."""
        forward = self._direction(layer, "", inputs)
        backward = self._direction(layer, "_reverse", inputs.flip(0)).flip(0)
        return torch.cat([forward, backward], dim=1)

    def _direction(self, layer: str, suffix: str, inputs: Tensor) -> Tensor:
        w = {kind: self.weights[f"{layer}.{kind}_l0{suffix}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        hidden_size = w["weight_hh"].shape[1]
        h = torch.zeros(hidden_size)
        c = torch.zeros(hidden_size)
        outputs = []
        for x in inputs:
            gates = w["weight_ih"] @ x + w["bias_ih"] + w["weight_hh"] @ h + w["bias_hh"]
            i, f, g, o = gates.chunk(4)
            c = hard_sigmoid(f) * c + hard_sigmoid(i) * torch.tanh(g)
            h = hard_sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs)
