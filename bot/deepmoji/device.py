"""The torch device check: one place decides whether a device can be used, before any download or load."""

from __future__ import annotations

import torch

from bot.errors import WhymojiError


class DeviceError(WhymojiError):
    """A torch device that does not exist or is not available on this machine."""


def require_device(device: str | torch.device, setting: str | None = "model.device") -> torch.device:
    """The torch device ``device`` names; ``DeviceError`` when torch does not know it, or when it
    is CUDA and CUDA cannot work here.

    ``setting`` names where the device came from (``model.device``, or the CLI's ``--device``),
    so the message can say what to change; ``None`` when a caller passed it directly
    (``load_model``).
    """
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise DeviceError(f"unknown torch device {device!r}: {error}") from None
    if target.type == "cuda" and not torch.cuda.is_available():
        if setting is None:
            raise DeviceError(f"device {device!r} asked for, but CUDA is not available on this machine")
        build = (
            f"torch {torch.__version__} has no CUDA support"
            if torch.version.cuda is None
            else (f"torch {torch.__version__} sees no CUDA device")
        )
        raise DeviceError(
            f'{setting} is "cuda" but {build}; use cpu instead, or install a CUDA build of torch '
            "on a machine with a GPU (README, Install)"
        )
    return target
