"""Reading a DeepMoji checkpoint: ``load_model`` and the checks that refuse a bad weights file.

The file is read with ``torch.load(..., weights_only=True)`` (no pickled code runs), after a
zip checkpoint's records are checked not to unpack to more than the file holds; then every key,
shape and dtype is checked, and NaN or infinite weights are refused. Every problem is a
``CheckpointError`` naming the file and the problem.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from bot.deepmoji.architecture import NUM_CLASSES, checkpoint_shapes
from bot.deepmoji.device import require_device
from bot.deepmoji.model import DeepMoji
from bot.errors import WhymojiError

logger = logging.getLogger(__name__)


class CheckpointError(WhymojiError):
    """A weights file that is missing, unreadable, or not a DeepMoji state_dict."""


def load_model(path: str | Path, device: str | torch.device = "cpu") -> DeepMoji:
    """A DeepMoji in eval mode with the weights of a torchMoji-format state_dict file.

    The file is read with ``weights_only=True`` (no pickled code runs); its dimensions come
    from ``embed.weight`` and ``lstm_0.weight_hh_l0``, then every key and shape is checked.
    """
    path = Path(path)
    target = require_device(device, setting=None)
    state = _read_state_dict(path)
    shapes = _expected_shapes(path, state)
    _check_tensors(path, state, shapes)
    vocab_size, embed_dim = shapes["embed.weight"]
    model = DeepMoji(vocab_size, embed_dim, shapes["lstm_0.weight_hh_l0"][1], shapes["output_layer.0.bias"][0])
    model.load_state_dict(state)
    logger.info("loaded DeepMoji weights from %s (vocabulary %d) on %s", path, vocab_size, target)
    return model.to(target).eval()


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
        raise CheckpointError(f"{path}: is a folder, not a weights file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    _check_archive(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickling_reason(error)
        if "GLOBAL" in reason:  # the file names code to import: a pickle that would run code
            raise CheckpointError(f"{path}: refused, the file would run code when loaded ({reason})") from None
        # Garbage bytes and a pickle of other objects fail alike here: say both.
        raise CheckpointError(f"{path}: refused, corrupt or not a plain PyTorch weights file ({reason})") from None
    except Exception as error:  # malformed bytes make torch.load fail in many ways (EOFError, KeyError, ...)
        cause = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: corrupt or truncated weights file ({cause})") from None
    if not isinstance(state, Mapping) or not all(isinstance(value, Tensor) for value in state.values()):
        raise CheckpointError(
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
        raise CheckpointError(
            f"{path}: refused, its records would unpack to {declared / 1e6:.1f} MB from a "
            f"{size / 1e6:.1f} MB file ({largest.filename}: {largest.file_size / 1e6:.1f} MB); "
            "a checkpoint written by torch.save is never compressed"
        )


def _expected_shapes(path: Path, state: Mapping[str, Tensor]) -> dict[str, tuple[int, ...]]:
    """The checkpoint shapes for the dimensions this state_dict declares."""
    dims: dict[str, int] = {}
    for key, names in (
        ("embed.weight", ("vocab_size", "embed_dim")),
        ("lstm_0.weight_hh_l0", ("gates", "hidden_size")),
    ):
        if key not in state or state[key].dim() != 2:
            found = tuple(state[key].shape) if key in state else "missing"
            raise CheckpointError(f"{path}: cannot read the model's dimensions: {key} is {found}, expected a matrix")
        dims.update(zip(names, state[key].shape))
    classes = state.get("output_layer.0.bias")
    num_classes = classes.shape[0] if classes is not None and classes.dim() == 1 else NUM_CLASSES
    return checkpoint_shapes(dims["vocab_size"], dims["embed_dim"], dims["hidden_size"], num_classes)


def _check_tensors(path: Path, state: Mapping[str, Tensor], shapes: Mapping[str, tuple[int, ...]]) -> None:
    missing = [key for key in shapes if key not in state]
    unexpected = [key for key in state if key not in shapes]
    if missing or unexpected:
        parts = ([f"missing keys {missing}"] if missing else []) + (
            [f"unexpected keys {unexpected}"] if unexpected else []
        )
        raise CheckpointError(f"{path}: not a DeepMoji state_dict: {'; '.join(parts)}")
    for key, shape in shapes.items():
        tensor = state[key]
        if tuple(tensor.shape) != shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(tensor.shape)}, expected {shape}")
        if not tensor.is_floating_point():
            raise CheckpointError(f"{path}: {key} has dtype {tensor.dtype}, expected floating point")
        broken = int((~torch.isfinite(tensor)).sum())
        if broken:
            raise CheckpointError(
                f"{path}: {key} has {broken} of {tensor.numel()} values that are NaN or infinite; "
                "the weights are damaged"
            )
