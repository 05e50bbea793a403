"""DeepMoji in PyTorch: the published torchMoji checkpoint's layout, with a fast batched predict.

The module's ``state_dict()`` has exactly the checkpoint's keys and shapes, so the published
``pytorch_model.bin`` loads as is. On a CPU, :meth:`DeepMoji.predict` runs on ONNX Runtime by
default (:mod:`bot.deepmoji.runtime`, faster there); the torch computation below is what other
devices, ``backend = "torch"`` and the explainers (``/why``) run. It does not use ``nn.LSTM``:
DeepMoji's gates are hard sigmoids, so the recurrence is our own, written for speed on a CPU:

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

import logging
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from bot.deepmoji.seeded import checkpoint_shapes
from bot.errors import WhymojiError

if TYPE_CHECKING:
    from bot.deepmoji.runtime import RuntimeModel

logger = logging.getLogger(__name__)

#: Where :meth:`DeepMoji.predict` can run on a CPU (benchmarks/README.md, *Runtimes*).
BACKENDS = ("onnxruntime", "torch")
#: What :meth:`DeepMoji.predict` can compute in: int8 only on ONNX Runtime (``model.precision``).
PRECISIONS = ("fp32", "int8")

#: The hard sigmoid ``clamp(SLOPE * x + OFFSET, 0, 1)`` of DeepMoji's (Keras') LSTM gates.
HARD_SIGMOID_SLOPE = 0.2
HARD_SIGMOID_OFFSET = 0.5


class ModelFileError(WhymojiError):
    """A weights file that is missing, unreadable, or not a DeepMoji state_dict."""


class DeviceError(WhymojiError):
    """A torch device that does not exist or is not available on this machine."""


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
    def from_lengths(cls, lengths: Sequence[int], device: torch.device | str = "cpu") -> PackedLayout:
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.size == 0 or lengths.min() < 1:
            raise ValueError("a packed layout needs at least one sequence and no empty ones")
        order = np.argsort(-lengths, kind="stable")
        sorted_lengths = lengths[order]
        counts = (sorted_lengths[None, :] > np.arange(sorted_lengths[0])[:, None]).sum(axis=1)
        offsets = np.concatenate(([0], np.cumsum(counts)))
        position = np.repeat(np.arange(len(counts)), counts)
        sequence = np.arange(offsets[-1]) - offsets[position]
        reverse = offsets[sorted_lengths[sequence] - 1 - position] + sequence
        as_index = lambda array: torch.from_numpy(array).to(device)  # noqa: E731
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
        return self.inputs.bias

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
        if h_prev is None:
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
# The module


class BiLSTMLayer(nn.Module):
    """Parameters of one bidirectional LSTM layer, named like ``nn.LSTM(bidirectional=True)``'s."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        gates = 4 * hidden_size
        for suffix in ("", "_reverse"):
            self.register_parameter(f"weight_ih_l0{suffix}", nn.Parameter(torch.empty(gates, input_size)))
            self.register_parameter(f"weight_hh_l0{suffix}", nn.Parameter(torch.empty(gates, hidden_size)))
            self.register_parameter(f"bias_ih_l0{suffix}", nn.Parameter(torch.empty(gates)))
            self.register_parameter(f"bias_hh_l0{suffix}", nn.Parameter(torch.empty(gates)))
        bound = hidden_size**-0.5
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)
        self._cache = Derived()

    def kernel_matrices(self) -> KernelMatrices:
        """This layer's weights in kernel layout, computed afresh (not kept: see ``kernel_weights``)."""
        with torch.no_grad():
            return KernelMatrices.of(dict(self.named_parameters()))

    def kernel_weights(self) -> KernelWeights:
        """This layer's :class:`KernelWeights`, rebuilt only when a parameter changed."""
        return self._cache.get(self, lambda: KernelWeights.of(self.kernel_matrices()))


class Attention(nn.Module):
    """DeepMoji's attention: one learned vector scores every position's features."""

    def __init__(self, feature_size: int) -> None:
        super().__init__()
        self.attention_vector = nn.Parameter(torch.empty(feature_size).normal_(0.0, 0.05))


class Derived:
    """A value computed from a module's parameters, recomputed when any of them changes
    (``load_state_dict``, an in-place update, ``.to(device)``)."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value = None

    def get(self, module: nn.Module, compute):
        key = _parameter_key(module)
        if key != self._key:
            with torch.no_grad():
                self._value = compute()
            self._key = key
        return self._value


def _parameter_key(module: nn.Module) -> tuple:
    """Where and at which version every parameter of ``module`` and its submodules is.

    Walks ``_modules`` / ``_parameters`` directly: ``module.parameters()`` costs ~40 us for
    DeepMoji, a measurable part of a short message's predict.
    """
    key, pending = [], [module]
    while pending:
        current = pending.pop()
        key.extend((p.data_ptr(), p._version, p.device) for p in current._parameters.values() if p is not None)
        pending.extend(child for child in current._modules.values() if child is not None)
    return tuple(key)


class DeepMoji(nn.Module):
    """DeepMoji: tanh(embedding) -> 2 bidirectional hard-sigmoid LSTMs -> attention -> softmax."""

    def __init__(
        self, vocab_size: int = 50_000, embed_dim: int = 256, hidden_size: int = 512, num_classes: int = 64
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm_0 = BiLSTMLayer(embed_dim, hidden_size)
        self.lstm_1 = BiLSTMLayer(2 * hidden_size, hidden_size)
        self.attention_layer = Attention(4 * hidden_size + embed_dim)
        self.output_layer = nn.Sequential(nn.Linear(4 * hidden_size + embed_dim, num_classes))
        #: What :meth:`predict` runs on a CPU: ``"onnxruntime"`` or ``"torch"`` (other devices: torch).
        self.backend = "onnxruntime"
        self._runtimes: dict[str, Derived] = {}

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def embedded(self, ids: Tensor) -> Tensor:
        """tanh of the embeddings of ``ids`` [N] -> [N, E]: only the rows a batch uses, never
        a whole-vocabulary table (that would be 51 MB kept for a few microseconds saved)."""
        return torch.tanh(self.embed.weight[ids])

    def encode(self, ids: Tensor, layout: PackedLayout) -> Tensor:
        """Packed ids [N] -> packed features [N, 4H + E]: [lstm_1 output, lstm_0 output, embedding]."""
        embedded = self.embedded(ids)
        layer_0 = run_bilstm(self.lstm_0.kernel_weights(), embedded, layout)
        layer_1 = run_bilstm(self.lstm_1.kernel_weights(), layer_0, layout)
        return torch.cat((layer_1, layer_0, embedded), dim=1)

    def attention_logits(self, features: Tensor) -> Tensor:
        """Packed features [N, F] -> attention logits [N] (before the per-sequence softmax)."""
        return features @ self.attention_layer.attention_vector

    def classify(self, features: Tensor, layout: PackedLayout) -> Tensor:
        """Packed features -> probabilities [B, num_classes] in the layout's sorted order."""
        weights = segment_softmax(self.attention_logits(features), layout)
        if layout.batch_size == 1:  # one message: a plain weighted sum, no scatter
            pooled = (weights @ features)[None]
        else:
            pooled = features.new_zeros(layout.batch_size, features.shape[1])
            pooled.index_add_(0, layout.sequence, features * weights[:, None])
        return torch.softmax(self.output_layer(pooled), dim=1)

    def forward(self, batch: Sequence[Sequence[int]]) -> Tensor:
        """Probabilities [B, num_classes] of a batch of id sequences, in the batch's order.

        A batch of more than ``MAX_BATCH_TOKENS`` tokens runs in consecutive parts, so a batch
        of long messages cannot raise the peak memory (about 50 KB of temporaries per token);
        rows are independent, so the result is the same.
        """
        flat, lengths = validate_batch(batch, self.vocab_size)
        if not lengths:
            return torch.zeros(0, self.num_classes, device=self.device)
        parts = []
        for first, last in token_groups(lengths, MAX_BATCH_TOKENS):
            offset = sum(lengths[:first])
            part_lengths = lengths[first:last]
            layout = PackedLayout.from_lengths(part_lengths, self.device)
            ids = torch.from_numpy(layout.pack(flat[offset : offset + sum(part_lengths)])).to(self.device)
            parts.append(layout.unsort(self.classify(self.encode(ids, layout), layout)))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def predict(self, batch: Sequence[Sequence[int]], *, precision: str = "fp32") -> np.ndarray:
        """Probabilities [B, num_classes] float32; each row is what the sequence gives alone.

        On a CPU with ``backend = "onnxruntime"`` (the default) ONNX Runtime computes them
        (:meth:`runtime`); ``precision="int8"`` is only offered there. Otherwise torch does.
        """
        if not self.uses_runtime():
            if precision != "fp32":
                raise ValueError(f"precision {precision!r} needs the onnxruntime backend on a CPU")
            with torch.inference_mode():
                return self(batch).float().cpu().numpy()
        flat, lengths = validate_batch(batch, self.vocab_size)
        if not lengths:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        return self.runtime(precision).predict(flat, lengths)

    def uses_runtime(self) -> bool:
        """Whether :meth:`predict` runs on ONNX Runtime (CPU and the onnxruntime backend)."""
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        return self.backend == "onnxruntime" and self.device.type == "cpu"

    def runtime(self, precision: str = "fp32") -> RuntimeModel:
        """The ONNX Runtime session for these weights at ``precision``, built on first use and
        again whenever a parameter or the thread count (``bot.deepmoji.threads``) changes."""
        from bot.deepmoji.runtime import RuntimeModel, session_options
        from bot.deepmoji.threads import runtime_threads

        threads = runtime_threads()
        cache = self._runtimes.setdefault(precision, Derived())
        built = cache.get(
            self, lambda: RuntimeModel(self._numpy_state(), precision=precision, options=session_options(threads))
        )
        if built.threads != threads:
            self._runtimes[precision] = Derived()
            return self.runtime(precision)
        return built

    def _numpy_state(self) -> dict[str, np.ndarray]:
        """The state_dict as float32 numpy arrays sharing the parameters' memory where it can."""
        return {
            name: np.asarray(tensor.detach().cpu().numpy(), dtype=np.float32)
            for name, tensor in self.state_dict().items()
        }


#: Most tokens one run of :meth:`DeepMoji.forward` encodes at once (a part of a larger batch).
MAX_BATCH_TOKENS = 2048


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


# --------------------------------------------------------------------------------------------
# Loading


def load_model(path: str | Path, device: str | torch.device = "cpu") -> DeepMoji:
    """A DeepMoji in eval mode with the weights of a torchMoji-format state_dict file.

    The file is read with ``weights_only=True`` (no pickled code runs); its dimensions come
    from ``embed.weight`` and ``lstm_0.weight_hh_l0``, then every key and shape is checked.
    """
    path = Path(path)
    target = _device(device)
    state = _read_state_dict(path)
    shapes = _expected_shapes(path, state)
    _check_tensors(path, state, shapes)
    vocab_size, embed_dim = shapes["embed.weight"]
    model = DeepMoji(vocab_size, embed_dim, shapes["lstm_0.weight_hh_l0"][1], shapes["output_layer.0.bias"][0])
    model.load_state_dict(state)
    logger.info("loaded DeepMoji weights from %s (vocabulary %d) on %s", path, vocab_size, target)
    return model.to(target).eval()


def _device(device: str | torch.device) -> torch.device:
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise DeviceError(f"unknown torch device {device!r}: {error}") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but CUDA is not available on this machine")
    return target


def _unpickling_reason(error: pickle.UnpicklingError) -> str:
    """torch's specific reason, without its boilerplate (which suggests ``weights_only=False``)."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation")
    for line in str(error).splitlines():
        line = line.strip().removeprefix("WeightsUnpickler error:").strip()
        if line and not line.startswith(boilerplate):
            return line
    return type(error).__name__


def _read_state_dict(path: Path) -> Mapping[str, Tensor]:
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a weights file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such weights file")
    _check_archive(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickling_reason(error)
        if "GLOBAL" in reason:  # the file names code to import: a pickle that would run code
            raise ModelFileError(f"{path}: refused, the file would run code when loaded ({reason})") from None
        # Garbage bytes and a pickle of other objects fail alike here: say both.
        raise ModelFileError(f"{path}: refused, corrupt or not a plain PyTorch weights file ({reason})") from None
    except Exception as error:  # malformed bytes make torch.load fail in many ways (EOFError, KeyError, ...)
        cause = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise ModelFileError(f"{path}: corrupt or truncated weights file ({cause})") from None
    if not isinstance(state, Mapping) or not all(isinstance(value, Tensor) for value in state.values()):
        raise ModelFileError(
            f"{path}: not a state_dict (expected a mapping of names to tensors, got {type(state).__name__})"
        )
    return state


def _check_archive(path: Path) -> None:
    """Refuse a zip checkpoint whose records would unpack to more bytes than the file holds.

    ``torch.save`` stores every record uncompressed, so a genuine archive's records add up to
    less than its size; torch.load inflates compressed records in full before any check of
    ours could run (a 1.9 MB zip made it allocate 2.2 GB). Legacy (non-zip) checkpoints are read
    from the file itself: a storage declared larger than the file fails on reading, before its
    memory is touched (a 500 MB claim in a 400-byte file: refused, resident memory unchanged).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # not a zip archive: torch.load decides what it is
    size = path.stat().st_size
    declared = sum(record.file_size for record in records)
    if declared > size:
        largest = max(records, key=lambda record: record.file_size)
        raise ModelFileError(
            f"{path}: refused, its records would unpack to {declared / 1e6:.1f} MB from a "
            f"{size / 1e6:.1f} MB file ({largest.filename}: {largest.file_size / 1e6:.1f} MB); "
            "a checkpoint written by torch.save is never compressed"
        )


def _expected_shapes(path: Path, state: Mapping[str, Tensor]) -> dict[str, tuple[int, ...]]:
    """The checkpoint shapes for the dimensions this state_dict declares."""
    dims = {}
    for key, names in (
        ("embed.weight", ("vocab_size", "embed_dim")),
        ("lstm_0.weight_hh_l0", ("gates", "hidden_size")),
    ):
        if key not in state or state[key].dim() != 2:
            found = tuple(state[key].shape) if key in state else "missing"
            raise ModelFileError(f"{path}: cannot read the model's dimensions: {key} is {found}, expected a matrix")
        dims.update(zip(names, state[key].shape))
    classes = state.get("output_layer.0.bias")
    num_classes = classes.shape[0] if classes is not None and classes.dim() == 1 else 64
    return checkpoint_shapes(dims["vocab_size"], dims["embed_dim"], dims["hidden_size"], num_classes)


def _check_tensors(path: Path, state: Mapping[str, Tensor], shapes: Mapping[str, tuple[int, ...]]) -> None:
    missing = [key for key in shapes if key not in state]
    unexpected = [key for key in state if key not in shapes]
    if missing or unexpected:
        parts = ([f"missing keys {missing}"] if missing else []) + (
            [f"unexpected keys {unexpected}"] if unexpected else []
        )
        raise ModelFileError(f"{path}: not a DeepMoji state_dict: {'; '.join(parts)}")
    for key, shape in shapes.items():
        tensor = state[key]
        if tuple(tensor.shape) != shape:
            raise ModelFileError(f"{path}: {key} has shape {tuple(tensor.shape)}, expected {shape}")
        if not tensor.is_floating_point():
            raise ModelFileError(f"{path}: {key} has dtype {tensor.dtype}, expected floating point")
        broken = int((~torch.isfinite(tensor)).sum())
        if broken:
            raise ModelFileError(
                f"{path}: {key} has {broken} of {tensor.numel()} values that are NaN or infinite; "
                "the weights are damaged"
            )
