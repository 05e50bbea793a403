"""A plain DeepMoji, computed the way the original torchMoji port computes it, one time step at a time.

Written for reading, not for speed: it is the oracle the fast model in ``model.py`` is tested
against and the baseline ``benchmarks/bench_predict.py`` measures it against. To be a fair
baseline it keeps the original port's computation structure, none of our optimisations:

* the batch is padded, sorted longest first and packed (``PackedSequence``): at time step ``t``
  the LSTM sees only the ``batch_sizes[t]`` sequences still running;
* every step of every direction computes ``linear(x_t, W_ih, b_ih) + linear(h, W_hh, b_hh)``
  (input projections are not hoisted out of the loop), splits the gates in the checkpoint's
  order i, f, g, o and applies the hard sigmoid as plain elementwise operations;
* the backward direction walks the packed steps from the last to the first, taking in new
  sequences (with zero states) as the batch grows again;
* each layer's two directions are concatenated, the features ``[lstm_1, lstm_0, tanh(embedding)]``
  are padded back and pooled by attention masked by the lengths, then a linear layer and softmax.

The weights are leaf tensors that require gradients, as the original's ``nn.Parameter`` s do,
so calling the model records autograd history unless the caller turns it off; ``predict``
does (``torch.inference_mode``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

PADDING_ID = 0  # torchMoji pads its id matrices with 0 (the mask token); padded rows are never read


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras' hard sigmoid, which DeepMoji's LSTM gates use instead of the logistic sigmoid."""
    return torch.clamp(x * 0.2 + 0.5, min=0.0, max=1.0)


def lstm_step(x: Tensor, h: Tensor, c: Tensor, weights: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """One LSTM cell step for a batch of rows: (h, c) after reading ``x``."""
    gates = F.linear(x, weights["weight_ih"], weights["bias_ih"])
    gates = gates + F.linear(h, weights["weight_hh"], weights["bias_hh"])
    in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=1)
    c = hard_sigmoid(forget_gate) * c + hard_sigmoid(in_gate) * torch.tanh(cell_gate)
    h = hard_sigmoid(out_gate) * torch.tanh(c)
    return h, c


def forward_direction(packed: PackedSequence, weights: Mapping[str, Tensor]) -> Tensor:
    """Packed outputs [N, H], reading every sequence left to right; the batch shrinks as they end."""
    batch_sizes = packed.batch_sizes.tolist()
    size = weights["weight_hh"].shape[1]
    h = c = packed.data.new_zeros(batch_sizes[0], size)
    outputs, start = [], 0
    for batch_size in batch_sizes:
        x = packed.data[start : start + batch_size]
        h, c = lstm_step(x, h[:batch_size], c[:batch_size], weights)
        outputs.append(h)
        start += batch_size
    return torch.cat(outputs)


def backward_direction(packed: PackedSequence, weights: Mapping[str, Tensor]) -> Tensor:
    """Packed outputs [N, H], reading every sequence right to left.

    The packed steps are walked from the last to the first; when a step has more sequences
    than the one after it, the sequences that end there join with zero states.
    """
    batch_sizes = packed.batch_sizes.tolist()
    size = weights["weight_hh"].shape[1]
    h = c = packed.data.new_zeros(0, size)
    outputs, end = [], len(packed.data)
    for batch_size in reversed(batch_sizes):
        joining = batch_size - h.shape[0]
        if joining:
            h = torch.cat([h, h.new_zeros(joining, size)])
            c = torch.cat([c, c.new_zeros(joining, size)])
        x = packed.data[end - batch_size : end]
        h, c = lstm_step(x, h, c, weights)
        outputs.append(h)
        end -= batch_size
    return torch.cat(outputs[::-1])


class ReferenceDeepMoji:
    """DeepMoji computed step by step with Python loops; ``predict`` has the fast model's API.

    Calling the object (``reference(batch)``) is a plain forward pass, recording autograd
    history like the original port's scripts; ``predict`` runs without it.
    """

    def __init__(self, state_dict: Mapping[str, Tensor]) -> None:
        self.weights = {name: tensor.detach().float().cpu().requires_grad_() for name, tensor in state_dict.items()}

    def predict(self, batch: Sequence[Sequence[int]]) -> np.ndarray:
        """Probabilities [B, num_classes] float32, as ``DeepMoji.predict`` gives them."""
        with torch.inference_mode():
            return self(batch).numpy()

    def __call__(self, batch: Sequence[Sequence[int]]) -> Tensor:
        """Probabilities [B, num_classes] of a batch of id sequences, in the batch's order."""
        lengths = torch.tensor([len(ids) for ids in batch], dtype=torch.int64)
        if len(batch) == 0 or lengths.min() == 0:
            raise ValueError("the reference needs at least one sequence and no empty ones")
        padded = torch.full((len(batch), int(lengths.max())), PADDING_ID, dtype=torch.int64)
        for row, ids in enumerate(batch):
            padded[row, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.int64)

        lengths, order = lengths.sort(descending=True)
        embedded = torch.tanh(F.embedding(padded[order], self.weights["embed.weight"]))
        packed = pack_padded_sequence(embedded, lengths, batch_first=True)
        layer_0 = self._bidirectional("lstm_0", packed)
        layer_1 = self._bidirectional("lstm_1", layer_0)
        features = packed._replace(data=torch.cat([layer_1.data, layer_0.data, packed.data], dim=1))
        padded_features, _ = pad_packed_sequence(features, batch_first=True)

        pooled = self._attention(padded_features, lengths)
        logits = F.linear(pooled, self.weights["output_layer.0.weight"], self.weights["output_layer.0.bias"])
        probabilities = torch.softmax(logits, dim=1)
        return probabilities[order.argsort()]

    def _bidirectional(self, layer: str, packed: PackedSequence) -> PackedSequence:
        """The layer's packed outputs: forward and backward outputs side by side, [N, 2H]."""
        forward = forward_direction(packed, self._lstm_weights(layer, ""))
        backward = backward_direction(packed, self._lstm_weights(layer, "_reverse"))
        return packed._replace(data=torch.cat([forward, backward], dim=1))

    def _lstm_weights(self, layer: str, suffix: str) -> dict[str, Tensor]:
        kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return {kind: self.weights[f"{layer}.{kind}_l0{suffix}"] for kind in kinds}

    def _attention(self, features: Tensor, lengths: Tensor) -> Tensor:
        """Attention-weighted sum of each sequence's features [B, T, F] -> [B, F]; padding weighs 0."""
        mask = torch.arange(features.shape[1])[None, :] < lengths[:, None]
        logits = (features @ self.weights["attention_layer.attention_vector"]).masked_fill(~mask, float("-inf"))
        unnormalised = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
        weights = unnormalised / unnormalised.sum(dim=1, keepdim=True)
        return (features * weights[:, :, None]).sum(dim=1)
