"""Leave-one-out ("occlusion") word scores: exact, every variant batched, shared work reused, in slices.

Definition: ``p = predict(ids)``, ``K`` = the ``top_k`` largest classes of ``p``; token ``i``
scores ``sum over k in K of p_k - q_i,k`` where ``q_i = predict(ids without ids[i])`` (the
sequence is shortened, not masked). A one-token message scores the total of ``p`` over ``K``.

Brute force runs ``N + 1`` sequences. Here one full pass of the message is followed by the
variants in chunks of mirrored variants (``i`` with ``N - 1 - i``) so memory stays bounded,
built on the model's own kernels (:func:`bot.deepmoji.kernels.run_recurrence`):

* Layer 0: a variant's forward states before the removed word and backward states after it
  are the full message's. Only the rest is recomputed, restarting from the full message's
  (h, c) next to the gap; the per-token input projections are the full message's. Variant
  ``i``'s forward run and variant ``N - 1 - i``'s backward run have the same length, so both
  directions share one batched time loop.
* Layer 1 sees layer 0's output through its input matrix, ``W [h_f; h_b] = W_f h_f + W_b h_b``:
  the half coming from an unchanged layer-0 state is the full message's product, reused.
* The output layer and the attention vector are linear in the features, so each position's
  contribution is projected to ``num_classes + 1`` numbers per part (reusing unchanged parts)
  and every variant is pooled and soft-maxed from those.

That leaves about 5 million multiply-adds per variant and position (``_variant_position_macs``),
all in matrix products: layer 0's recurrence, its new states' projection into layer 1, and layer
1's two recurrences. Every variant changes every position of layer 1 (a changed layer-0 state
reaches layer 1 on both sides of the gap), so scoring all ``N`` words exactly costs
``N (N - 1)`` times that: the square of the length. ``bot.explain.shown`` scores only the words a
reply can show exactly when that is too much.

Slices (``bot.explain.steps``): the work yields about every ``SLICE_MACS`` multiply-adds. A
chunk (bounded by ``max_rows`` for memory) is cut *inside* its time loops and products, not into
smaller chunks: few rows per product are slow on a CPU, so big chunks and short slices go together.

``window=W`` is an explicit approximation for long messages: a variant recomputes only the
``W`` tokens each side of the gap (both layers, restarting from the full message's states at
the window's edges) and takes the full message's features beyond. With ``W >= N - 1`` it is
the exact computation. Each windowed variant also reports its *edge mismatch*, how far its states
still were from the full message's where the window ends (``_edge_mismatch``): what its error
grows with, and ``bot.explain.shown``'s gauge for it. ``Occlusion.scores`` scores any set of
variants (with their mirrors), so the exact and windowed scores share one full pass.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from bot.deepmoji.kernels import BatchedLinear, Derived, PackedLayout, run_recurrence, validate_batch
from bot.deepmoji.model import DeepMoji
from bot.explain.steps import Steps, Work, finish, in_fractions

#: Bound on the layer-1 rows (variant positions) one chunk computes; sets the peak memory. At the
#: default 40 tokens: 2 chunks, ~50 MB above the model, 0.75-0.78 s; one chunk (2048) was 10-13%
#: faster but peaked ~25 MB higher, which the bot's 600 MB budget has no room for (benchmarks/README.md).
DEFAULT_MAX_ROWS = 1024
#: Multiply-adds between two yields: about 25-50 ms on one quiet thread of the 2-core AMD EPYC we
#: develop on (benchmarks/README.md), so a worker can interleave other requests that often.
SLICE_MACS = 4e8
#: A time step with fewer rows than this costs about as much as this many: the weights are read anyway.
MIN_STEP_ROWS = 4
#: Rows gathered at once where a gather only feeds a sum (bounds that temporary to ~2 MB).
GATHER_ROWS = 256


@dataclass(frozen=True)
class _Projections:
    """The model's weights rearranged for per-part feature projections.

    ``out`` stacks the output layer and the attention vector: ``out @ features`` gives the
    class logits' contribution and the attention logit of one position in one product.
    ``from_states`` maps a layer-0 state (map 0: forward, map 1: backward) to what it feeds:
    both layer-1 directions' input gates, and its part of ``out @ features``. It holds layer 1's
    input weights, so layer 1's own kernel weights are not built: only its recurrent part
    (``hidden_1``, ``bias_1``) is kept beside it.
    """

    out: Tensor  # [C + 1, F]
    out_bias: Tensor  # [C]
    from_states: BatchedLinear  # [2, H, 8H + C + 1]
    hidden_1: BatchedLinear  # layer 1's recurrent ``h @ W_hh`` [2, H, 4H]
    bias_1: Tensor  # [2, 1, 4H] layer 1's bias in kernel gate order

    @classmethod
    def of(cls, model: DeepMoji) -> _Projections:
        """Built once per model and reused while its parameters stay the same."""
        cache = _PROJECTIONS.get(model)
        if cache is None:
            cache = _PROJECTIONS[model] = Derived()
        return cache.get(model, lambda: cls._build(model))

    @classmethod
    def _build(cls, model: DeepMoji) -> _Projections:
        matrices = model.lstm_1.kernel_matrices()
        layer_1 = matrices.input_weight  # [2, 2H, 4H]
        size = layer_1.shape[1] // 2
        linear = cast(nn.Linear, model.output_layer[0])  # ``output_layer.0``, the checkpoint's name
        out = torch.cat((linear.weight, model.attention_layer.attention_vector[None]), dim=0)
        layer_0_forward = out[:, 2 * size : 3 * size]
        layer_0_backward = out[:, 3 * size : 4 * size]
        from_forward = torch.cat((layer_1[0, :size], layer_1[1, :size], layer_0_forward.t()), dim=1)
        from_backward = torch.cat((layer_1[0, size:], layer_1[1, size:], layer_0_backward.t()), dim=1)
        from_states = BatchedLinear(torch.stack((from_forward, from_backward)))
        return cls(
            out=out,
            out_bias=linear.bias,
            from_states=from_states,
            hidden_1=BatchedLinear(matrices.hidden_weight),
            bias_1=matrices.bias,
        )


_PROJECTIONS: weakref.WeakKeyDictionary[DeepMoji, Derived[_Projections]] = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------------------------
# Work in slices. Tensor code runs inside ``torch.inference_mode`` blocks that never span a
# yield: a generator may be resumed on another thread, or closed and dropped between slices.
# ``yield 0.0`` after large copies (not counted as work) ends a slice there too.


def _linear(linear: BatchedLinear, inputs: Tensor, out: Tensor | None = None) -> Work[Tensor]:
    """``linear(inputs)`` ([D, n, In] -> [D, n, Out]) in row blocks of about ``SLICE_MACS``,
    written into ``out`` (a new tensor when omitted): no block is held twice."""
    directions, rows, _ = inputs.shape
    row_macs = directions * linear.in_features * linear.out_features
    block = max(1, int(SLICE_MACS // row_macs))
    if out is None:
        out = inputs.new_empty(directions, rows, linear.out_features)
    for start in range(0, rows, block):
        with torch.inference_mode():
            out[:, start : start + block] = linear(inputs[:, start : start + block])
        yield min(block, rows - start) * row_macs
    return out


def _recurrence(
    input_gates: Tensor,
    hidden_linear: BatchedLinear,
    counts: Sequence[int],
    initial: tuple[Tensor, Tensor] | None = None,
) -> Work[tuple[Tensor, Tensor]]:
    """:func:`run_recurrence` in segments of time steps of about ``SLICE_MACS`` each."""
    directions, total_rows, gate_size = input_gates.shape
    row_macs = directions * hidden_linear.in_features * gate_size
    with torch.inference_mode():
        hidden, cells = (input_gates.new_empty(directions, total_rows, gate_size // 4) for _ in range(2))
    first = row = 0
    while first < len(counts):
        last, work = first, 0.0
        while last < len(counts) and work < SLICE_MACS:
            work += max(counts[last], MIN_STEP_ROWS) * row_macs
            last += 1
        rows = sum(counts[first:last])
        part = slice(row, row + rows)
        with torch.inference_mode():
            h, c = run_recurrence(
                input_gates[:, part], hidden_linear, counts[first:last], initial, out=(hidden[:, part], cells[:, part])
            )
        initial = (h[:, rows - counts[last - 1] :], c[:, rows - counts[last - 1] :])
        first, row = last, row + rows
        yield work
    return hidden, cells


def _bidirectional(input_gates: Tensor, hidden_linear: BatchedLinear) -> Work[tuple[Tensor, Tensor]]:
    """One sequence both ways from input gates [2, N, 4H] in position order -> (h, c) in position order."""
    with torch.inference_mode():
        aligned = torch.stack((input_gates[0], input_gates[1].flip(0)))
    hidden, cells = yield from _recurrence(aligned, hidden_linear, [1] * input_gates.shape[1])
    with torch.inference_mode():
        unflip = lambda states: torch.stack((states[0], states[1].flip(0)))  # noqa: E731
        return unflip(hidden), unflip(cells)


# --------------------------------------------------------------------------------------------
# The full message


@dataclass(frozen=True)
class _FullPass:
    """The whole message once: every state the variants restart from or reuse.

    States are [2, N, H], direction 0 forward and direction 1 backward, both in position order.
    ``outputs`` [N, C + 1] is each position's ``out @ features``; ``embedding_outputs`` the
    embedding's part of it (never changes).
    """

    input_gates_0: Tensor  # [2, N, 4H]
    hidden_0: Tensor
    cells_0: Tensor
    hidden_1: Tensor
    cells_1: Tensor
    outputs: Tensor
    embedding_outputs: Tensor
    projected: Tensor  # [2, N, 8H + C + 1]: hidden_0 through ``from_states``
    probabilities: np.ndarray  # [C] float64


def _pool(outputs: Tensor, out_bias: Tensor) -> Tensor:
    """Probabilities from per-position ``out @ features`` [..., T, C + 1] (attention logit last)."""
    outputs = outputs.double()
    attention = torch.softmax(outputs[..., -1], dim=-1)
    logits = (attention[..., None] * outputs[..., :-1]).sum(dim=-2) + out_bias.double()
    return torch.softmax(logits, dim=-1)


def _full_pass(model: DeepMoji, ids: Tensor, projections: _Projections) -> Work[_FullPass]:
    layer_0 = model.lstm_0.kernel_weights()
    with torch.inference_mode():
        embedded = model.embedded(ids)
    input_gates_0 = yield from _linear(layer_0.inputs, embedded.expand(2, *embedded.shape))
    hidden_0, cells_0 = yield from _bidirectional(input_gates_0, layer_0.hidden)
    projected = yield from _linear(projections.from_states, hidden_0)
    with torch.inference_mode():  # layer 1's input gates: W [h_f; h_b] = W_f h_f + W_b h_b
        gate_size = projections.bias_1.shape[-1]
        both = projected[0, :, : 2 * gate_size] + projected[1, :, : 2 * gate_size]
        input_gates_1 = both.view(-1, 2, gate_size).transpose(0, 1) + projections.bias_1
    hidden_1, cells_1 = yield from _bidirectional(input_gates_1, projections.hidden_1)
    with torch.inference_mode():
        features = torch.cat((hidden_1[0], hidden_1[1], hidden_0[0], hidden_0[1], embedded), dim=1)
        size = hidden_0.shape[2]
        outputs = features @ projections.out.t()
        return _FullPass(
            input_gates_0=input_gates_0,
            hidden_0=hidden_0,
            cells_0=cells_0,
            hidden_1=hidden_1,
            cells_1=cells_1,
            outputs=outputs,
            embedding_outputs=embedded @ projections.out[:, 4 * size :].t(),
            projected=projected,
            probabilities=_pool(outputs, projections.out_bias).cpu().numpy(),
        )


def _variant_position_macs(model: DeepMoji) -> float:
    """Multiply-adds per variant and position: layer 0's recurrence (4H^2) and its new state's
    projection (H (8H + C + 1)), layer 1's two recurrences (8H^2)."""
    size = model.lstm_0.weight_hh_l0.shape[1]
    return size * (20 * size + model.num_classes + 1)


def scores_macs(model: DeepMoji, length: int, count: int, window: int | None) -> float:
    """About how many multiply-adds scoring ``count`` variants takes (for progress)."""
    span = length - 1 if window is None else min(length - 1, 2 * window)
    return count * span * _variant_position_macs(model)


def full_pass_macs(model: DeepMoji, length: int) -> float:
    """Multiply-adds of ``_full_pass`` (for progress): recurrences at ``MIN_STEP_ROWS`` rows a step."""
    embed, size = model.embed.weight.shape[1], model.lstm_0.weight_hh_l0.shape[1]
    per_token = 2 * 4 * size * (embed + 2 * size)  # both layers' input projections, both directions
    per_token += 2 * 2 * MIN_STEP_ROWS * 4 * size * size  # both layers' recurrences
    per_token += 2 * size * (8 * size + model.num_classes + 1)  # layer 0's states for the variants
    return per_token * length


# --------------------------------------------------------------------------------------------
# Variants


def _padded(states: Tensor, before: bool) -> Tensor:
    """States [N, H] with a zero row added before (index ``i`` -> state ``i - 1``) or after."""
    zero = states.new_zeros(1, states.shape[1])
    return torch.cat((zero, states) if before else (states, zero))


def _packed(lengths: np.ndarray) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Time-major packing of sequences already sorted longest first: rows per step, each row's sequence and step."""
    layout = PackedLayout.from_lengths(lengths)
    return layout.counts, layout.sequence.numpy(), layout.position.numpy()


def _window_bounds(length: int, window: int | None) -> tuple[np.ndarray, np.ndarray]:
    """First and last position each variant recomputes (everything when exact)."""
    positions = np.arange(length)
    reach = length if window is None else window
    return np.maximum(positions - reach, 0), np.minimum(positions + reach, length - 1)


def mirrored(variants: np.ndarray, length: int) -> np.ndarray:
    """``variants`` with each one's mirror ``length - 1 - i``, sorted: the sets variants are scored in."""
    variants = np.asarray(variants, dtype=np.int64)
    return np.union1d(variants, length - 1 - variants)


def _chunks(variants: np.ndarray, length: int, window: int | None, max_rows: int) -> Iterator[np.ndarray]:
    """The mirror-closed ``variants`` in chunks closed under ``i <-> N - 1 - i``, each within ``max_rows`` rows."""
    span = length - 1 if window is None else min(length - 1, 2 * window)
    low_halves = variants[variants <= (length - 1) // 2]
    # As few chunks as ``max_rows`` allows, of equal size: bigger products run faster.
    chunks = -(-len(low_halves) // max(1, max_rows // (2 * span)))
    pairs_per_chunk = -(-len(low_halves) // max(1, chunks))
    for first in range(0, len(low_halves), pairs_per_chunk):
        low = low_halves[first : first + pairs_per_chunk]
        yield np.union1d(low, length - 1 - low)


@dataclass(frozen=True)
class _Chunk:
    """A chunk of variants (sorted, closed under ``i <-> N - 1 - i``) and their recompute windows."""

    variants: np.ndarray
    local: np.ndarray  # [N] position of each variant in ``variants`` (-1: not in this chunk)
    low: np.ndarray  # [N] first position variant i recomputes
    high: np.ndarray  # [N] last position variant i recomputes

    @classmethod
    def of(cls, variants: np.ndarray, low: np.ndarray, high: np.ndarray) -> _Chunk:
        local = np.full(len(low), -1)
        local[variants] = np.arange(len(variants))
        return cls(variants, local, low, high)


@dataclass(frozen=True)
class _Layer0:
    """Every layer-0 state a chunk's variants see, projected (``_Projections.from_states``).

    ``projected[0]``/``[1]`` hold the full message's forward/backward rows the chunk needs, then
    the recomputed ones; ``forward_rows[v, j]`` is the row of variant ``v``'s forward state at
    position ``j`` (-1 where no window of the chunk reaches).
    """

    projected: Tensor  # [2, N + recomputed, 8H + C + 1]
    forward_rows: np.ndarray  # [V, N]
    backward_rows: np.ndarray  # [V, N]
    mismatch: np.ndarray  # [V] see ``_edge_mismatch``


def _as_index(array: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def _edge_mismatch(
    states: tuple[Tensor, Tensor], full: tuple[Tensor, Tensor], direction: int, rows: np.ndarray, positions: np.ndarray
) -> np.ndarray:
    """Largest difference between recomputed (h, c) ``states`` [2, rows, H] at ``rows`` and the
    full message's ``full`` [2, N, H] at ``positions``, in one direction.

    At the edge of a recompute window this is how far the variant still was from the full
    message where the full message's states took over: 0 for an exact window, and what a
    window's estimate error grows with (``bot.explain.shown`` calibrates it).
    """
    device = states[0].device
    with torch.inference_mode():
        rows_, positions_ = _as_index(rows, device), _as_index(positions, device)
        gaps = [
            (recomputed[direction, rows_] - reference[direction, positions_]).abs().amax(dim=1)
            for recomputed, reference in zip(states, full)
        ]
        return torch.maximum(*gaps).double().cpu().numpy()


def _layer_0(model: DeepMoji, full: _FullPass, projections: _Projections, chunk: _Chunk) -> Work[_Layer0]:
    """Recompute forward after the gap (variant i) beside backward before it (variant N-1-i).

    Only the full message's rows inside some window of the chunk are carried along, so a long
    message's chunk holds its own neighbourhood, not the whole message again.
    """
    device, length = full.outputs.device, full.hidden_0.shape[1]
    edges = np.zeros(length + 1, dtype=np.int64)
    np.add.at(edges, chunk.low[chunk.variants], 1)
    np.add.at(edges, chunk.high[chunk.variants] + 1, -1)
    needed = np.flatnonzero(np.cumsum(edges[:length]) > 0)
    full_row = np.full(length, -1)
    full_row[needed] = np.arange(len(needed))
    forward_rows = np.tile(full_row, (len(chunk.variants), 1))
    backward_rows = forward_rows.copy()

    # A mirror-closed chunk holds a variant before the last position, so some run has length >= 1.
    lengths = chunk.high[chunk.variants] - chunk.variants
    order = np.lexsort((chunk.variants, -lengths))
    running = lengths[order] > 0
    forward_variants = chunk.variants[order][running]
    backward_variants = length - 1 - forward_variants
    counts, sequence, step = _packed(lengths[order][running])
    forward_positions = forward_variants[sequence] + 1 + step
    backward_positions = backward_variants[sequence] - 1 - step
    with torch.inference_mode():
        gates = torch.stack(
            (
                full.input_gates_0[0, _as_index(forward_positions, device)],
                full.input_gates_0[1, _as_index(backward_positions, device)],
            )
        )
        start_forward = _as_index(forward_variants, device)  # into states padded before: state i - 1
        start_backward = _as_index(backward_variants + 1, device)

        def restart(states: Tensor) -> Tensor:
            return torch.stack((_padded(states[0], True)[start_forward], _padded(states[1], False)[start_backward]))

        initial = (restart(full.hidden_0), restart(full.cells_0))
    hidden, cells = yield from _recurrence(gates, model.lstm_0.kernel_weights().hidden, counts, initial)
    rows = len(needed) + np.arange(len(sequence))
    forward_rows[chunk.local[forward_variants[sequence]], forward_positions] = rows
    backward_rows[chunk.local[backward_variants[sequence]], backward_positions] = rows
    # A run's last row is where the window ends: the full message's states take over after it,
    # unless the run reached the message's end.
    last = np.flatnonzero(step == lengths[order][running][sequence] - 1)
    mismatch = np.zeros(len(chunk.variants))
    for direction, (variants, positions, tail) in enumerate(
        (
            (forward_variants[sequence[last]], forward_positions[last], forward_positions[last] < length - 1),
            (backward_variants[sequence[last]], backward_positions[last], backward_positions[last] > 0),
        )
    ):
        gap = _edge_mismatch((hidden, cells), (full.hidden_0, full.cells_0), direction, last[tail], positions[tail])
        np.maximum.at(mismatch, chunk.local[variants[tail]], gap)
    with torch.inference_mode():
        projected = full.projected.new_empty(2, len(needed) + hidden.shape[1], full.projected.shape[2])
        projected[:, : len(needed)] = full.projected[:, _as_index(needed, device)]  # a message's rows: small
    del cells  # only the edge mismatch needed them
    yield from _linear(projections.from_states, hidden, out=projected[:, len(needed) :])
    return _Layer0(projected, forward_rows, backward_rows, mismatch)


@dataclass(frozen=True)
class _Layer1Plan:
    """A chunk's layer-1 rows, packed: row ``r`` is variant ``variants[r]`` (``local[r]`` in the
    chunk) at ``positions[d][r]`` in direction ``d``, its ``steps[r]``-th step of ``spans[r]``."""

    counts: tuple[int, ...]
    variants: np.ndarray
    local: np.ndarray
    steps: np.ndarray
    spans: np.ndarray
    positions: tuple[np.ndarray, np.ndarray]  # forward, backward direction
    ordered: np.ndarray  # the chunk's variants, longest window first

    @classmethod
    def of(cls, chunk: _Chunk) -> _Layer1Plan:
        spans = chunk.high[chunk.variants] - chunk.low[chunk.variants]
        order = np.lexsort((chunk.variants, -spans))
        ordered = chunk.variants[order]
        counts, sequence, steps = _packed(spans[order])
        variants, low, row_spans = ordered[sequence], chunk.low[ordered][sequence], spans[order][sequence]

        def position(offset: np.ndarray) -> np.ndarray:
            return low + offset + (low + offset >= variants)  # skipping the gap

        positions = (position(steps), position(row_spans - 1 - steps))
        return cls(counts, variants, chunk.local[variants], steps, row_spans, positions, ordered)


def _layer_1_inputs(layer_0: _Layer0, plan: _Layer1Plan, bias: Tensor) -> tuple[Tensor, Tensor]:
    """Layer 1's input gates [2, rows, 4H] of the plan's rows, and the layer-0 part of their
    ``out @ features`` [rows, C + 1], gathered from ``layer_0.projected`` (which the caller may
    then drop: it is the chunk's largest tensor)."""
    projected = layer_0.projected
    device, gate_size = projected.device, bias.shape[-1]
    # Per direction, the rows of each plan row's forward and backward layer-0 state.
    state_rows = [
        (
            _as_index(layer_0.forward_rows[plan.local, positions], device),
            _as_index(layer_0.backward_rows[plan.local, positions], device),
        )
        for positions in plan.positions
    ]
    with torch.inference_mode():
        input_gates = projected.new_empty(2, len(plan.variants), gate_size)
        for direction, (forward, backward) in enumerate(state_rows):
            columns = slice(direction * gate_size, (direction + 1) * gate_size)
            torch.index_select(projected[0, :, columns], 0, forward, out=input_gates[direction])
            for start in range(0, len(backward), GATHER_ROWS):  # never a second [rows, 4H] at once
                rows = slice(start, start + GATHER_ROWS)
                input_gates[direction, rows] += projected[1, backward[rows], columns]
        input_gates += bias
        forward, backward = state_rows[0]  # each row's own position
        outputs = projected[0, forward, 2 * gate_size :] + projected[1, backward, 2 * gate_size :]
    return input_gates, outputs


def _layer_1(
    full: _FullPass, hidden_linear: BatchedLinear, plan: _Layer1Plan, input_gates: Tensor, chunk: _Chunk
) -> Work[tuple[Tensor, np.ndarray]]:
    """Each variant's window without the gap, both directions over the same packed rows:
    hidden states [2, rows, H] and each variant's edge mismatch (``_edge_mismatch``)."""
    device, length = full.outputs.device, full.hidden_0.shape[1]
    with torch.inference_mode():
        starts = _as_index(chunk.low[plan.ordered], device)  # into states padded before: state low - 1
        ends = _as_index(chunk.high[plan.ordered] + 1, device)

        def restart(states: Tensor) -> Tensor:
            return torch.stack((_padded(states[0], True)[starts], _padded(states[1], False)[ends]))

        initial = (restart(full.hidden_1), restart(full.cells_1))
    hidden, cells = yield from _recurrence(input_gates, hidden_linear, plan.counts, initial)
    last = np.flatnonzero(plan.steps == plan.spans - 1)
    last_variants = plan.variants[last]
    mismatch = np.zeros(len(chunk.variants))
    for direction, tail in enumerate((chunk.high[last_variants] < length - 1, chunk.low[last_variants] > 0)):
        rows = last[tail]
        states, full_states = (hidden, cells), (full.hidden_1, full.cells_1)
        gap = _edge_mismatch(states, full_states, direction, rows, plan.positions[direction][rows])
        np.maximum.at(mismatch, plan.local[rows], gap)
    return hidden, mismatch


def _variant_probabilities(
    model: DeepMoji, full: _FullPass, projections: _Projections, chunk: _Chunk
) -> Work[tuple[Tensor, np.ndarray]]:
    """q_i [V, C] of the chunk's variants: the full message's outputs beyond each window,
    recomputed ones inside it, the gap masked out of the attention; and each variant's largest
    state mismatch at its window's edges (``_edge_mismatch``)."""
    device, length, size = full.outputs.device, full.hidden_0.shape[1], full.hidden_0.shape[2]
    plan = _Layer1Plan.of(chunk)
    layer_0 = yield from _layer_0(model, full, projections, chunk)
    input_gates, layer_0_outputs = _layer_1_inputs(layer_0, plan, projections.bias_1)
    layer_0_mismatch = layer_0.mismatch
    del layer_0  # its projected states are in the input gates now; the recurrence needs the memory
    yield 0.0
    hidden, layer_1_mismatch = yield from _layer_1(full, projections.hidden_1, plan, input_gates, chunk)
    del input_gates
    forward_positions, backward_positions = plan.positions
    with torch.inference_mode():
        outputs = full.outputs.expand(len(chunk.variants), *full.outputs.shape).clone()
        flat = outputs.view(-1, outputs.shape[-1])
        flat[_as_index(plan.local * length + forward_positions, device)] = (
            hidden[0] @ projections.out[:, :size].t()
            + layer_0_outputs
            + full.embedding_outputs[_as_index(forward_positions, device)]
        )
        flat.index_add_(
            0,
            _as_index(plan.local * length + backward_positions, device),
            hidden[1] @ projections.out[:, size : 2 * size].t(),
        )
        gaps = (torch.arange(len(chunk.variants), device=device), _as_index(chunk.variants, device), -1)
        outputs[gaps] = float("-inf")
        return _pool(outputs, projections.out_bias), np.maximum(layer_0_mismatch, layer_1_mismatch)


# --------------------------------------------------------------------------------------------
# Public API


@dataclass(frozen=True)
class VariantScores:
    """Some variants' scores, and how far each one's recompute window was from converging."""

    variants: np.ndarray  #: sorted word indices
    scores: np.ndarray
    mismatch: np.ndarray  #: largest state mismatch at the window's edges (``_edge_mismatch``); 0 when exact
    #: [V, C] float64: each variant's whole prediction, q_i (all zeros for a one-word message,
    #: whose only variant is empty: nothing is left to predict, so its score is the whole mass)
    probabilities: np.ndarray


@dataclass(frozen=True)
class Occlusion:
    """One message after its full pass: its probabilities, and any of its variants' scores on demand."""

    model: DeepMoji
    ids: np.ndarray
    top: np.ndarray  #: the ``top_k`` classes whose probability drop is the score
    probabilities: np.ndarray  #: [C] float64, the message's prediction
    _full: _FullPass
    _projections: _Projections

    @classmethod
    def steps(cls, model: DeepMoji, ids: Sequence[int], top_k: int = 5) -> Work[Occlusion]:
        """The full pass in slices. ``ValueError`` (raised before the first slice) for bad ids or ``top_k``."""
        if not 1 <= top_k <= model.num_classes:
            raise ValueError(f"top_k must be from 1 to {model.num_classes}, got {top_k}")
        flat, _ = validate_batch([ids], model.vocab_size)
        return cls._steps(model, flat, top_k)

    @classmethod
    def _steps(cls, model: DeepMoji, flat: np.ndarray, top_k: int) -> Work[Occlusion]:
        projections = _Projections.of(model)
        full = yield from _full_pass(model, torch.from_numpy(flat).to(model.device), projections)
        top = np.argsort(-full.probabilities, kind="stable")[:top_k]
        return cls(model, flat, top, full.probabilities, full, projections)

    @property
    def length(self) -> int:
        return len(self.ids)

    @property
    def mass(self) -> float:
        """The message's probability over the top classes: the score of its only word if it has one."""
        return float(self.probabilities[self.top].sum())

    def scores(
        self, variants: np.ndarray, window: int | None = None, max_rows: int = DEFAULT_MAX_ROWS
    ) -> Work[VariantScores]:
        """The scores of ``variants`` and their mirrors, which cost little more.

        Exact unless ``window`` is below ``N - 1`` (see the module docstring).
        """
        length = self.length
        with_mirrors = mirrored(variants, length)
        if length == 1:
            return VariantScores(
                with_mirrors, np.array([self.mass]), np.zeros(1), np.zeros((1, len(self.probabilities)))
            )
        window = None if window is not None and window >= length - 1 else window
        low, high = _window_bounds(length, window)
        scores, mismatch = np.empty(len(with_mirrors)), np.empty(len(with_mirrors))
        without = np.empty((len(with_mirrors), len(self.probabilities)))
        for chunk in _chunks(with_mirrors, length, window, max_rows):
            chunk_of = _Chunk.of(chunk, low, high)
            q_tensor, chunk_mismatch = yield from _variant_probabilities(
                self.model, self._full, self._projections, chunk_of
            )
            with torch.inference_mode():
                q = q_tensor.cpu().numpy()
            where = np.searchsorted(with_mirrors, chunk)
            scores[where] = self.mass - q[:, self.top].sum(axis=1)
            mismatch[where], without[where] = chunk_mismatch, q
            yield 0.0
        return VariantScores(with_mirrors, scores, mismatch, without)


def occlusion(
    model: DeepMoji,
    ids: Sequence[int],
    top_k: int = 5,
    *,
    window: int | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> np.ndarray:
    """Occlusion scores [N] (float64) of ``ids``: exact unless ``window`` is below ``N - 1``."""
    return occlusion_and_probabilities(model, ids, top_k, window=window, max_rows=max_rows)[0]


def occlusion_and_probabilities(
    model: DeepMoji,
    ids: Sequence[int],
    top_k: int = 5,
    *,
    window: int | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """``occlusion``'s scores and the message's probabilities [C] (float64): the full pass
    computes both, so ``explain`` needs no second model run for the emojis it shows."""
    return finish(occlusion_steps(model, ids, top_k, window=window, max_rows=max_rows))


def occlusion_steps(
    model: DeepMoji,
    ids: Sequence[int],
    top_k: int = 5,
    *,
    window: int | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Steps[tuple[np.ndarray, np.ndarray]]:
    """``occlusion_and_probabilities`` in slices: yields the fraction done (``SLICE_MACS`` of
    work at most between two yields) and returns (scores, probabilities).

    Argument errors (``ValueError``) are raised here, before the first slice.
    """
    return _scores_and_message(every_variant_steps(model, ids, top_k, window=window, max_rows=max_rows))


def _scores_and_message(steps: Steps[EveryVariant]) -> Steps[tuple[np.ndarray, np.ndarray]]:
    every_word = yield from steps
    return every_word.scores, every_word.message


@dataclass(frozen=True)
class EveryVariant:
    """Every word's score and the whole prediction without it, beside the message's own."""

    scores: np.ndarray  #: [N] float64
    without: np.ndarray  #: [N, C] float64: q_i, the prediction of the message without word i
    message: np.ndarray  #: [C] float64: p, the prediction of the message


def every_variant_steps(
    model: DeepMoji,
    ids: Sequence[int],
    top_k: int = 5,
    *,
    window: int | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Steps[EveryVariant]:
    """``occlusion_steps`` keeping each variant's whole prediction: what a word does to every
    class (``p - q_i``) and which emojis lead without it, from the same pass at no extra cost."""
    if window is not None and window < 1:
        raise ValueError(f"window must be at least 1 token, got {window}")
    message = Occlusion.steps(model, ids, top_k)
    total = full_pass_macs(model, len(ids)) + scores_macs(model, len(ids), len(ids), window)
    return in_fractions(_every_variant(message, window, max_rows), total)


def _every_variant(message: Work[Occlusion], window: int | None, max_rows: int) -> Work[EveryVariant]:
    occluded = yield from message
    every_word = yield from occluded.scores(np.arange(occluded.length), window, max_rows)
    return EveryVariant(every_word.scores, every_word.probabilities, occluded.probabilities)
