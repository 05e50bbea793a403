"""DeepMoji's architecture as data: its dimensions, its gates and the checkpoint's shapes.

What the torch model (:mod:`bot.deepmoji.model`), the checkpoint checks
(:mod:`bot.deepmoji.checkpoint`), the ONNX graph (:mod:`bot.deepmoji.onnx_graph`) and ONNX
Runtime (:mod:`bot.deepmoji.runtime`) must agree on, in one place that imports nothing of
theirs (nor torch), so none of them imports another for a constant.
"""

from __future__ import annotations

#: Where :meth:`DeepMoji.predict` can run on a CPU (benchmarks/README.md, *Runtimes*).
BACKENDS = ("onnxruntime", "torch")
#: What :meth:`DeepMoji.predict` can compute in: int8 only on ONNX Runtime (``model.precision``).
PRECISIONS = ("fp32", "int8")

#: The hard sigmoid ``clamp(SLOPE * x + OFFSET, 0, 1)`` of DeepMoji's (Keras') LSTM gates.
HARD_SIGMOID_SLOPE = 0.2
HARD_SIGMOID_OFFSET = 0.5

#: The published checkpoint's dimensions: vocabulary, embedding, LSTM hidden size, emoji classes.
VOCAB_SIZE = 50_000
EMBED_DIM = 256
HIDDEN_SIZE = 512
NUM_CLASSES = 64


def checkpoint_shapes(
    vocab_size: int = VOCAB_SIZE,
    embed_dim: int = EMBED_DIM,
    hidden_size: int = HIDDEN_SIZE,
    num_classes: int = NUM_CLASSES,
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a DeepMoji state_dict, in the published checkpoint's key order."""
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (vocab_size, embed_dim)}
    gates = 4 * hidden_size
    for layer, input_size in (("lstm_0", embed_dim), ("lstm_1", 2 * hidden_size)):
        for suffix in ("", "_reverse"):
            shapes[f"{layer}.weight_ih_l0{suffix}"] = (gates, input_size)
            shapes[f"{layer}.weight_hh_l0{suffix}"] = (gates, hidden_size)
            shapes[f"{layer}.bias_ih_l0{suffix}"] = (gates,)
            shapes[f"{layer}.bias_hh_l0{suffix}"] = (gates,)
    attention_size = 4 * hidden_size + embed_dim
    shapes["attention_layer.attention_vector"] = (attention_size,)
    shapes["output_layer.0.weight"] = (num_classes, attention_size)
    shapes["output_layer.0.bias"] = (num_classes,)
    return shapes
