"""DeepMoji in PyTorch: the published torchMoji checkpoint's layout, with a fast batched predict.

The module's ``state_dict()`` has exactly the checkpoint's keys and shapes, so the published
``pytorch_model.bin`` loads as is (:func:`bot.deepmoji.checkpoint.load_model`). On a CPU,
:meth:`DeepMoji.predict` runs on ONNX Runtime by default (:mod:`bot.deepmoji.runtime`, faster
there); the torch computation, on the kernels of :mod:`bot.deepmoji.kernels`, is what other
devices, ``backend = "torch"`` and the explainers (``/why``) run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from bot.deepmoji.architecture import BACKENDS, EMBED_DIM, HIDDEN_SIZE, NUM_CLASSES, VOCAB_SIZE
from bot.deepmoji.kernels import (
    Derived,
    KernelMatrices,
    KernelWeights,
    PackedLayout,
    run_bilstm,
    segment_softmax,
    token_groups,
    validate_batch,
)

if TYPE_CHECKING:
    from bot.deepmoji.runtime import RuntimeModel

#: Most tokens one run of :meth:`DeepMoji.forward` encodes at once (a part of a larger batch).
MAX_BATCH_TOKENS = 2048


class BiLSTMLayer(nn.Module):
    """Parameters of one bidirectional LSTM layer, named like ``nn.LSTM(bidirectional=True)``'s."""

    # Registered by name in __init__; declared here for type checkers.
    weight_ih_l0: nn.Parameter
    weight_hh_l0: nn.Parameter
    bias_ih_l0: nn.Parameter
    bias_hh_l0: nn.Parameter
    weight_ih_l0_reverse: nn.Parameter
    weight_hh_l0_reverse: nn.Parameter
    bias_ih_l0_reverse: nn.Parameter
    bias_hh_l0_reverse: nn.Parameter

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
        self._cache: Derived[KernelWeights] = Derived()

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


class DeepMoji(nn.Module):
    """DeepMoji: tanh(embedding) -> 2 bidirectional hard-sigmoid LSTMs -> attention -> softmax."""

    def __init__(
        self,
        vocab_size: int = VOCAB_SIZE,
        embed_dim: int = EMBED_DIM,
        hidden_size: int = HIDDEN_SIZE,
        num_classes: int = NUM_CLASSES,
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
        self._runtimes: dict[str, Derived[RuntimeModel]] = {}

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
        # On first use: the torch path (other devices, /why) never needs ONNX Runtime.
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
