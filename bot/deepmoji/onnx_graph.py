"""DeepMoji as an ONNX graph, built in memory from the checkpoint's tensors.

ONNX Runtime runs the graph (:mod:`bot.deepmoji.runtime`); nothing is written to disk and no
second model file exists: the graph is made from whatever weights the model holds, each time
they change. It is written with ``onnx.helper`` rather than exported with ``torch.onnx``
because our torch forward is a hand-written packed recurrence that an exporter would trace
into a loop of small ops, while ONNX has one operator that is exactly DeepMoji's layer: the
standard ``LSTM`` with hard-sigmoid gates (``activations=[HardSigmoid, Tanh, Tanh]``,
``alpha=0.2, beta=0.5``), which ONNX Runtime implements with packed weights and fused gates.

The embedding lookup stays outside the graph: the caller feeds ``tanh(embedding[ids])``, so
the 51 MB table is not copied into the runtime (its rows are read from the torch parameter).

Inputs (time-major, padded): ``embedded`` [T, B, E] float32, ``lengths`` [B] int32 (each
sequence's length; the LSTM stops there and reads the backward direction within it) and
``mask`` [T, B, 1] float32 (0 for real positions, -inf for padding, added to the attention
logits). Output: ``probabilities`` [B, C].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bot.deepmoji.architecture import HARD_SIGMOID_OFFSET, HARD_SIGMOID_SLOPE

#: ONNX opset of the graph (the LSTM operator's semantics have not changed since opset 14).
OPSET = 17
INPUTS = ("embedded", "lengths", "mask")
OUTPUT = "probabilities"

#: What a node attribute can be here (``onnx.helper.make_attribute`` takes these).
AttributeValue = int | float | str | Sequence[int] | Sequence[float] | Sequence[str]


def _onnx_gate_rows(rows: np.ndarray) -> np.ndarray:
    """Checkpoint (PyTorch) gate rows i, f, g, o -> ONNX's i, o, f, c along the first axis."""
    i, f, g, o = np.split(rows, 4, axis=0)
    return np.concatenate([i, o, f, g], axis=0)


def lstm_initializers(state: Mapping[str, np.ndarray], layer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ONNX ``W`` [2, 4H, In], ``R`` [2, 4H, H] and ``B`` [2, 8H] of one bidirectional layer."""
    directions = ("", "_reverse")
    weights = np.stack([_onnx_gate_rows(state[f"{layer}.weight_ih_l0{s}"]) for s in directions])
    recurrent = np.stack([_onnx_gate_rows(state[f"{layer}.weight_hh_l0{s}"]) for s in directions])
    biases = np.stack(
        [
            np.concatenate(
                [_onnx_gate_rows(state[f"{layer}.bias_ih_l0{s}"]), _onnx_gate_rows(state[f"{layer}.bias_hh_l0{s}"])]
            )
            for s in directions
        ]
    )
    return weights, recurrent, biases


def build_graph(state: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    """The DeepMoji graph for a state_dict given as float32 numpy arrays (checkpoint keys)."""
    embed_dim = state["embed.weight"].shape[1]
    hidden_size = state["lstm_0.weight_hh_l0"].shape[1]
    num_classes = state["output_layer.0.bias"].shape[0]
    initializers: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def constant(name: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attributes: AttributeValue) -> str:
        # make_node takes the attributes as **kwargs beside its own optional str parameters (name,
        # doc_string, ...), so mypy checks every attribute value against those.
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))  # type: ignore[arg-type]
        return output

    merge_directions = constant("merge_directions", np.array([0, 0, -1], dtype=np.int64))
    layer_input, layers = "embedded", []
    for index in (0, 1):
        weights, recurrent, biases = lstm_initializers(state, f"lstm_{index}")
        both = node(
            "LSTM",
            [
                layer_input,
                constant(f"W{index}", weights),
                constant(f"R{index}", recurrent),
                constant(f"B{index}", biases),
                "lengths",
            ],
            f"lstm_{index}",
            direction="bidirectional",
            hidden_size=hidden_size,
            activations=["HardSigmoid", "Tanh", "Tanh"] * 2,
            # One alpha/beta per direction: only HardSigmoid takes them.
            activation_alpha=[HARD_SIGMOID_SLOPE] * 2,
            activation_beta=[HARD_SIGMOID_OFFSET] * 2,
        )
        # [T, 2, B, H] -> [T, B, 2H]: forward then backward, as the checkpoint's layer output.
        by_batch = node("Transpose", [both], f"lstm_{index}_by_batch", perm=[0, 2, 1, 3])
        layer_input = node("Reshape", [by_batch, merge_directions], f"lstm_{index}_output")
        layers.append(layer_input)

    features = node("Concat", [layers[1], layers[0], "embedded"], "features", axis=2)
    vector = constant("attention_vector", state["attention_layer.attention_vector"][:, None])
    logits = node("Add", [node("MatMul", [features, vector], "attention_logits"), "mask"], "masked_logits")
    attention = node("Softmax", [logits], "attention", axis=0)
    time_axis = constant("time_axis", np.array([0], dtype=np.int64))
    pooled = node("ReduceSum", [node("Mul", [features, attention], "weighted"), time_axis], "pooled", keepdims=0)
    scores = node(
        "Gemm",
        [
            pooled,
            constant("output_weight", state["output_layer.0.weight"]),
            constant("output_bias", state["output_layer.0.bias"]),
        ],
        "scores",
        transB=1,
    )
    node("Softmax", [scores], OUTPUT, axis=1)

    graph = helper.make_graph(
        nodes,
        "deepmoji",
        [
            helper.make_tensor_value_info("embedded", TensorProto.FLOAT, ["T", "B", embed_dim]),
            helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["T", "B", 1]),
        ],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["B", num_classes])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="whymoji")
