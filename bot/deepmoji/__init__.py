"""The DeepMoji engine: tokenizer, model, weights and the 64 emoji classes. No Discord here.

The public names below are imported on first use (PEP 562), so importing a light submodule
such as ``bot.deepmoji.emojis`` or ``bot.deepmoji.files`` does not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names __getattr__ gives, typed for type checkers (unused here)
    from bot.deepmoji.checkpoint import CheckpointError, load_model  # noqa: F401
    from bot.deepmoji.emojis import EMOJIS, Emoji  # noqa: F401
    from bot.deepmoji.engine import EmptyTextError, Engine, ModelMismatchError  # noqa: F401
    from bot.deepmoji.files import ModelFiles, ModelFilesError, download_model_files, resolve_model_files  # noqa: F401
    from bot.deepmoji.model import DeepMoji  # noqa: F401
    from bot.deepmoji.tokenizer import Token, Tokenizer, VocabularyError  # noqa: F401

#: Public name -> the submodule that defines it.
_EXPORTS = {
    "Token": "tokenizer",
    "Tokenizer": "tokenizer",
    "VocabularyError": "tokenizer",
    "DeepMoji": "model",
    "load_model": "checkpoint",
    "CheckpointError": "checkpoint",
    "Emoji": "emojis",
    "EMOJIS": "emojis",
    "ModelFiles": "files",
    "ModelFilesError": "files",
    "resolve_model_files": "files",
    "download_model_files": "files",
    "Engine": "engine",
    "EmptyTextError": "engine",
    "ModelMismatchError": "engine",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
