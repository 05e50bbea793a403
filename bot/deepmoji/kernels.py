"""The torch kernels of DeepMoji, which ``/why`` and the torch path of :meth:`DeepMoji.predict` run on.

:mod:`bot.deepmoji.model` holds the ``nn.Module`` with the checkpoint's parameters; this module
is the computation, written for speed on a CPU. It does not use ``nn.LSTM``: DeepMoji's gates
are hard sigmoids, so the recurrence is our own:

* A batch is *packed*: sorted longest first and laid out time-major without padding
  (:class:`PackedLayout`). Step ``t`` is a contiguous block of the sequences still running, so
  the active batch shrinks as sequences end and no work is spent on padding.
* The backward direction reads each sequence reversed *within its own length*, so both
  directions run left-aligned over the same layout, side by side in one batched matmul.
* The input projections of every position and both directions are computed before the time
  loop (:meth:`KernelWeights.input_gates`); only the ``h @ W_hh`` product stays inside it.
* Matmuls are plain batched MKL products (:class:`BatchedLinear`), both directions in one call.
* Gate rows are reordered to i, f, o, g and the hard sigmoid's ``0.2 * x + 0.5`` is folded into
  the i/f/o weights and biases, so the three sigmoid gates are one ``clamp_`` per step.

:func:`run_recurrence` and :func:`run_bilstm` are public: the occlusion explainer restarts
directions from given (h, c) states and reads per-position outputs and attention logits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from bot.deepmoji.architecture import HARD_SIGMOID_OFFSET, HARD_SIGMOID_SLOPE

# --------------------------------------------------------------------------------------------
# Batch layout


@dataclass(frozen=True)
class PackedLayout:
    """Where each (sequence, position) of a batch lives once packed time-major, longest first.

    Packed data holds time step 0 of every sequence, then step 1 of those longer than 1, and
    so on: step ``t`` is ``counts[t]`` consecutive rows, the ``j``-th being the ``j``-th longest
    sequence.
    """

    order: np.ndarray  #: [B] original batch index of each sorted sequence
    lengths: np.ndarray  #: [B] sorted lengths, longest first
    counts: tuple[int, ...]  #: rows of each time step (sequences longer than t), never growing
    sequence: Tensor  #: [N] sorted sequence index of each row
    position: Tensor  #: [N] position within its sequence of each row
    reverse: Tensor  #: [N] row of the same sequence's mirrored position ``length - 1 - t``

    @classmethod
    def from_lengths(cls, lengths: Sequence[int] | np.ndarray, device: torch.device | str = "cpu") -> PackedLayout:
        by_batch = np.asarray(lengths, dtype=np.int64)
        if by_batch.size == 0 or by_batch.min() < 1:
            raise ValueError("a packed layout needs at least one sequence and no empty ones")
        order = np.argsort(-by_batch, kind="stable")
        sorted_lengths = by_batch[order]
        counts = (sorted_lengths[None, :] > np.arange(sorted_lengths[0])[:, None]).sum(axis=1)
        offsets = np.concatenate(([0], np.cumsum(counts)))
        position = np.repeat(np.arange(len(counts)), counts)
        sequence = np.arange(offsets[-1]) - offsets[position]
        reverse = offsets[sorted_lengths[sequence] - 1 - position] + sequence

        def as_index(array: np.ndarray) -> Tensor:
            return torch.from_numpy(array).to(device)

        return cls(
            order=order,
            lengths=sorted_lengths,
            counts=tuple(counts.tolist()),
            sequence=as_index(sequence),
            position=as_index(position),
            reverse=as_index(reverse),
        )

    @property
    def batch_size(self) -> int:
        return len(self.order)

    @property
    def rows(self) -> int:
        return int(self.lengths.sum())

    def pack(self, flat_ids: np.ndarray) -> np.ndarray:
        """Packed ids [N] from the ids of the original batch's rows, concatenated in batch order."""
        original_lengths = np.empty_like(self.lengths)
        original_lengths[self.order] = self.lengths
        sorted_starts = (np.cumsum(original_lengths) - original_lengths)[self.order]
        return flat_ids[sorted_starts[self.sequence.cpu().numpy()] + self.position.cpu().numpy()]

    def unsort(self, per_sequence: Tensor) -> Tensor:
        """Rows in sorted order -> rows in the original batch order."""
        inverse = np.empty_like(self.order)
        inverse[self.order] = np.arange(len(self.order))
        return per_sequence[torch.from_numpy(inverse).to(per_sequence.device)]


# --------------------------------------------------------------------------------------------
# Kernels


class BatchedLinear:
    """``D`` independent linear maps ``x[d] @ weight[d] + bias[d]``, applied in one ``baddbmm``.

    Plain MKL products, no oneDNN-packed copies: with ONNX Runtime doing the CPU's predictions,
    these run ``/why``, where MKL's unpadded products were as fast or faster (a 50-token
    explanation on one thread: 1.29 against 1.47 s; 30 tokens: equal) and oneDNN's packed
    copies and per-shape kernels cost ~30 MB (benchmarks/README.md, *What was tried*).
    """

    def __init__(self, weight: Tensor, bias: Tensor | None = None) -> None:
        self.weight = weight  #: [D, In, Out]
        self.bias = bias  #: [D, 1, Out] or None
        self.in_features, self.out_features = weight.shape[1:]

    def __call__(self, x: Tensor, add: Tensor | None = None) -> Tensor:
        """[D, n, In] -> [D, n, Out]; adds ``add`` ([D, n, Out]) if given, else the bias."""
        base = self.bias if add is None else add
        return torch.bmm(x, self.weight) if base is None else torch.baddbmm(base, x, self.weight)


@dataclass(frozen=True)
class KernelMatrices:
    """One bidirectional layer's weights in kernel layout; index 0 forward, 1 backward.

    Gate rows are reordered to i, f, o, g and the i/f/o rows and biases are pre-scaled so that
    ``clamp(gates[..., :3H], 0, 1)`` *is* the hard sigmoid; ``tanh(gates[..., 3H:])`` the candidate.
    """

    input_weight: Tensor  #: [2, In, 4H]
    hidden_weight: Tensor  #: [2, H, 4H]
    bias: Tensor  #: [2, 1, 4H], bias_ih + bias_hh

    @classmethod
    def of(cls, parameters: Mapping[str, Tensor]) -> KernelMatrices:
        """From one layer's ``weight_ih_l0``, ``weight_hh_l0``, ... (and ``_reverse``)."""
        input_weights, hidden_weights, biases = [], [], []
        for suffix in ("", "_reverse"):
            input_weights.append(_kernel_gate_rows(parameters[f"weight_ih_l0{suffix}"]).t())
            hidden_weights.append(_kernel_gate_rows(parameters[f"weight_hh_l0{suffix}"]).t())
            bias = parameters[f"bias_ih_l0{suffix}"] + parameters[f"bias_hh_l0{suffix}"]
            biases.append(_kernel_gate_rows(bias, HARD_SIGMOID_OFFSET))
        return cls(
            input_weight=torch.stack(input_weights).contiguous(),
            hidden_weight=torch.stack(hidden_weights).contiguous(),
            bias=torch.stack(biases).unsqueeze(1).contiguous(),
        )


@dataclass(frozen=True)
class KernelWeights:
    """One layer's :class:`KernelMatrices` as the kernels use them: ``inputs`` maps every row's
    input to its gates (with the bias), ``hidden`` is the recurrent ``h @ W_hh`` (pass it to
    :func:`run_recurrence`)."""

    inputs: BatchedLinear  #: [2, In, 4H] with the bias
    hidden: BatchedLinear  #: [2, H, 4H]

    @classmethod
    def of(cls, matrices: KernelMatrices) -> KernelWeights:
        return cls(
            inputs=BatchedLinear(matrices.input_weight, matrices.bias),
            hidden=BatchedLinear(matrices.hidden_weight),
        )

    @property
    def bias(self) -> Tensor:
        """[2, 1, 4H]: bias_ih + bias_hh in kernel gate order."""
        bias = self.inputs.bias
        assert bias is not None, "KernelWeights.of gives the input product the bias"
        return bias

    def input_gates(self, inputs: Tensor) -> Tensor:
        """Input projections of every row, both directions at once: [2, N, In] -> [2, N, 4H]."""
        return self.inputs(inputs)


def _kernel_gate_rows(rows: Tensor, offset: float = 0.0) -> Tensor:
    """Checkpoint rows i, f, g, o (first dim 4H) -> kernel rows i, f, o, g with folded hard sigmoid."""
    i, f, g, o = rows.chunk(4)
    return torch.cat([torch.cat([i, f, o]) * HARD_SIGMOID_SLOPE + offset, g])


def run_recurrence(
    input_gates: Tensor,
    hidden_linear: BatchedLinear,
    counts: Sequence[int],
    initial: tuple[Tensor, Tensor] | None = None,
    *,
    out: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Run ``D`` independent LSTM directions over packed rows; returns (hidden, cells), each [D, N, H].

    ``input_gates`` [D, N, 4H] are input projections in kernel gate order (left unchanged);
    ``hidden_linear`` is the recurrent ``h @ W_hh`` ([D, H, 4H], ``KernelWeights.hidden``).
    ``counts`` splits the N rows into time steps, each step being the first ``count`` sequences
    of the previous one (sorted longest first, as in :class:`PackedLayout`). ``initial`` =
    (h0, c0), each [D, counts[0], H]: the states *before* the first step (zeros when omitted).
    Every row's output and cell state is returned, so a caller can restart a direction from
    any position; ``out`` = (hidden, cells) are written instead of new tensors (a caller
    running a long sequence in parts fills one pair of its own, with no copy at the end).
    """
    directions, rows, gate_size = input_gates.shape
    size = gate_size // 4
    if out is None:
        out = (input_gates.new_empty(directions, rows, size), input_gates.new_empty(directions, rows, size))
    hidden, cells = out
    h_prev, c_prev = initial if initial is not None else (None, None)
    for count, step_gates, h, c in zip(
        counts, input_gates.split(counts, 1), hidden.split(counts, 1), cells.split(counts, 1)
    ):
        if h_prev is None or c_prev is None:  # both or neither
            gates = step_gates.clone(memory_format=torch.contiguous_format)
        else:
            if h_prev.shape[1] != count:
                h_prev, c_prev = h_prev[:, :count], c_prev[:, :count]
            gates = hidden_linear(h_prev, add=step_gates)
        by_gate = gates.view(directions, count, 4, size)
        by_gate.narrow(2, 0, 3).clamp_(0.0, 1.0)
        i, f, o, g = by_gate.unbind(2)
        torch.mul(i, g.tanh_(), out=c)
        if c_prev is not None:
            c.addcmul_(f, c_prev)
        torch.tanh(c, out=h).mul_(o)
        h_prev, c_prev = h, c
    return hidden, cells


def run_bilstm(weights: KernelWeights, inputs: Tensor, layout: PackedLayout) -> Tensor:
    """One bidirectional layer: packed inputs [N, In] in reading order -> [N, 2H] (forward, backward).

    The backward direction runs over each sequence reversed within its own length (rows
    ``layout.reverse``), so it shares the forward direction's layout and time loop.
    """
    both = torch.stack((inputs, inputs[layout.reverse]))
    hidden, _ = run_recurrence(weights.input_gates(both), weights.hidden, layout.counts)
    return torch.cat((hidden[0], hidden[1][layout.reverse]), dim=1)


def segment_softmax(logits: Tensor, layout: PackedLayout) -> Tensor:
    """Softmax of packed per-row logits [N] within each sequence (padding never exists here)."""
    batch = layout.batch_size
    if batch == 1:
        return torch.softmax(logits, dim=0)
    peaks = logits.new_full((batch,), float("-inf")).scatter_reduce_(0, layout.sequence, logits, "amax")
    exps = torch.exp(logits - peaks[layout.sequence])
    totals = logits.new_zeros(batch).index_add_(0, layout.sequence, exps)
    return exps / totals[layout.sequence]


# --------------------------------------------------------------------------------------------
# Derived weights


Value = TypeVar("Value")
#: Where and at which version each parameter is (``_parameter_key``).
ParameterKey = tuple[tuple[int, int, torch.device], ...]


class Derived(Generic[Value]):
    """A value computed from a module's parameters, recomputed when any of them changes
    (``load_state_dict``, an in-place update, ``.to(device)``)."""

    def __init__(self) -> None:
        self._cached: tuple[ParameterKey, Value] | None = None

    def get(self, module: nn.Module, compute: Callable[[], Value]) -> Value:
        key = _parameter_key(module)
        if self._cached is None or self._cached[0] != key:
            with torch.no_grad():
                self._cached = (key, compute())
        return self._cached[1]


def _parameter_key(module: nn.Module) -> ParameterKey:
    """Where and at which version every parameter of ``module`` and its submodules is.

    Walks ``_modules`` / ``_parameters`` directly: ``module.parameters()`` costs ~40 us for
    DeepMoji, a measurable part of a short message's predict.
    """
    key: list[tuple[int, int, torch.device]] = []
    pending = [module]
    while pending:
        current = pending.pop()
        key.extend((p.data_ptr(), p._version, p.device) for p in current._parameters.values() if p is not None)
        pending.extend(child for child in current._modules.values() if child is not None)
    return tuple(key)


# --------------------------------------------------------------------------------------------
# Batches


def token_groups(lengths: Sequence[int], limit: int) -> list[tuple[int, int]]:
    """Consecutive [first, last) index ranges of ``lengths``, each totalling at most ``limit``
    (or a single longer sequence)."""
    groups, first, total = [], 0, 0
    for index, length in enumerate(lengths):
        if total and total + length > limit:
            groups.append((first, index))
            first, total = index, 0
        total += length
    groups.append((first, len(lengths)))
    return groups


def validate_batch(batch: Sequence[Sequence[int]], vocab_size: int) -> tuple[np.ndarray, list[int]]:
    """(all ids concatenated, each row's length); ValueError naming the first bad row."""
    lengths = [len(row) for row in batch]
    for row, length in enumerate(lengths):
        if length == 0:
            raise ValueError(f"row {row} of the batch is an empty sequence; DeepMoji needs at least one token")
    flat = np.array(list(chain.from_iterable(batch)), dtype=None if lengths else np.int64)
    if flat.dtype.kind not in "iu":
        raise ValueError(f"token ids must be integers, got values of type {flat.dtype}")
    bad = np.flatnonzero((flat < 0) | (flat >= vocab_size))
    if bad.size:
        row = int(np.searchsorted(np.cumsum(lengths), bad[0], side="right"))
        raise ValueError(f"row {row} has token id {int(flat[bad[0]])}, outside the vocabulary 0..{vocab_size - 1}")
    return flat, lengths
