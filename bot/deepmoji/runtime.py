"""ONNX Runtime behind ``DeepMoji.predict`` on a CPU: the graph of :mod:`bot.deepmoji.onnx_graph`
run in length groups.

Why ONNX Runtime: its ``LSTM`` kernel runs DeepMoji's recurrence faster than our torch path on
the CPUs we measured, at the same 1e-5 agreement (benchmarks/README.md, *Runtimes*). What this
module adds to a plain session is batching that computes no padding to speak of: the ``LSTM``
operator runs every sequence of a call to the longest one's length, so a batch is split into
groups of similar lengths (:func:`length_groups`), each one call with its ``sequence_lens``.

``precision="int8"`` quantizes the LSTM weights dynamically (``onnxruntime.quantization``) from
the same graph at build time: faster, close to fp32 but not within 1e-5 (``whymoji agreement``
measures how close on the operator's own weights and messages). Dynamic quantization scales
each call's activations together, so a message's int8 result would depend on its batch mates:
int8 runs every message alone, which measured as fast as grouping (benchmarks/README.md).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from bot.deepmoji.architecture import PRECISIONS
from bot.deepmoji.onnx_graph import OUTPUT, build_graph

logger = logging.getLogger(__name__)

#: Cost of one ONNX Runtime call of ``m`` sequences padded to ``T`` tokens, in units of one
#: sequence's step: ``CALL_COST + T * (STEP_COST + m)``. Every call reads all LSTM weights once
#: (CALL_COST) and every step reads each direction's recurrent weights once, whatever ``m``
#: (STEP_COST); each sequence's step then costs about as much again. Estimated from one-thread
#: timings on the development machine (one message: ~0.9-1 ms per token plus ~1.6 ms per call;
#: large batches ~0.56 ms per token); corpus batches ran as fast with both constants doubled or
#: halved (benchmarks/README.md, *What was tried*).
CALL_COST = 3.0
STEP_COST = 0.6
#: Most padded tokens (T x m) one call may hold, bounding its temporaries (tens of KB each).
MAX_CALL_TOKENS = 2048


def length_groups(lengths: Sequence[int] | np.ndarray, *, max_tokens: int | None = None) -> list[np.ndarray]:
    """Batch indices in groups of similar length, each group one call, at the least modelled cost.

    Sorted by length, the best split into contiguous runs is found exactly (dynamic
    programming over where each run starts; a run costs ``CALL_COST + longest * (STEP_COST +
    size)``). A run of more than one sequence may hold at most ``max_tokens`` padded tokens.
    """
    max_tokens = MAX_CALL_TOKENS if max_tokens is None else max_tokens
    order = np.argsort(np.asarray(lengths), kind="stable")
    ordered = np.asarray(lengths, dtype=np.float64)[order]
    count = len(order)
    best = np.zeros(count + 1)
    start = np.zeros(count + 1, dtype=np.int64)
    for end in range(1, count + 1):
        longest = ordered[end - 1]
        firsts = np.arange(end)
        sizes = end - firsts
        costs = best[:end] + CALL_COST + longest * (STEP_COST + sizes)
        costs[(sizes > 1) & (sizes * longest > max_tokens)] = np.inf
        start[end] = int(np.argmin(costs))
        best[end] = costs[start[end]]
    groups, end = [], count
    while end:
        groups.append(order[start[end] : end])
        end = start[end]
    return groups[::-1]


def session_options(threads: int, *, spinning: bool = False) -> ort.SessionOptions:
    """One session's settings: ``threads`` intra-op threads that sleep rather than spin when
    idle unless ``spinning`` (spinning threads starve everything else on a busy host:
    benchmarks/README.md, *Threads*), all graph optimizations, no memory arena, quiet logs."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    # No arena: buffers go back to the allocator after each call instead of staying at the
    # largest call's size; as fast on the corpus, ~10-15 MB less in the bot (benchmarks/README.md).
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3  # errors only
    return options


class _NoPreprocessingAdvice(logging.Filter):
    """Drops the quantizer's root-logger advice to run its model pre-processing (shape inference
    and fusions for static quantization), which weight-only LSTM quantization does not use."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize(source: Path, target: Path) -> None:
    """Write the graph at ``source`` with int8 LSTM weights to ``target`` (dynamic quantization;
    the attention and output layers stay fp32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    advice = _NoPreprocessingAdvice()
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(source, target, op_types_to_quantize=["LSTM"], weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().removeFilter(advice)


class RuntimeModel:
    """One ONNX Runtime session for a set of DeepMoji weights, and the batching around it."""

    def __init__(
        self, state: dict[str, np.ndarray], *, precision: str = "fp32", options: ort.SessionOptions | None = None
    ) -> None:
        """``options`` default to :func:`session_options` with one thread."""
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        options = options or session_options(1)
        self.embedding = state["embed.weight"]  # read per batch: never copied into the session
        self.num_classes = state["output_layer.0.bias"].shape[0]
        self.precision = precision
        self.threads = options.intra_op_num_threads
        # Through a file: a session made from bytes keeps them (38 MB) for its lifetime.
        with tempfile.TemporaryDirectory(prefix="whymoji-onnx-") as folder:
            path = Path(folder) / "deepmoji.onnx"
            onnx.save_model(build_graph(state), path)
            if precision == "int8":
                path, source = path.with_name("deepmoji-int8.onnx"), path
                quantize(source, path)
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        logger.debug("ONNX Runtime session ready: %s, %d thread(s)", precision, self.threads)

    def predict(self, flat: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        """Probabilities [B, C] float32 of sequences given as all ids concatenated and their lengths."""
        row_lengths = np.asarray(lengths, dtype=np.int32)
        if len(row_lengths) == 1:  # one message: no grouping, no padding
            return self._run(flat[:, None], row_lengths)
        starts = np.cumsum(row_lengths) - row_lengths
        result = np.empty((len(row_lengths), self.num_classes), dtype=np.float32)
        groups = length_groups(row_lengths) if self.precision == "fp32" else np.arange(len(row_lengths))[:, None]
        for group in groups:
            steps = int(row_lengths[group].max())
            ids = np.zeros((len(group), steps), dtype=np.int64)
            for row, index in enumerate(group):
                ids[row, : row_lengths[index]] = flat[starts[index] : starts[index] + row_lengths[index]]
            result[group] = self._run(ids.T, row_lengths[group])
        return result

    def _run(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """One call: ``ids`` [T, B] padded time-major, ``lengths`` [B] int32."""
        positions = np.arange(ids.shape[0], dtype=np.int32)[:, None, None]
        mask = np.where(positions < lengths[None, :, None], np.float32(0.0), np.float32(-np.inf))
        feeds = {"embedded": np.tanh(self.embedding[ids]), "lengths": lengths, "mask": mask}
        return self._session.run([OUTPUT], feeds)[0]
