"""Fixtures of the demo's tests: an engine on the small seeded model (tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def engine(small_model_dir):
    from bot.deepmoji.engine import Engine
    from bot.deepmoji.files import ModelFiles

    return Engine.load(ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"))


@pytest.fixture(scope="module")
def short_engine(small_model_dir):
    """Reads at most 6 tokens, so a short text shows the ``model.max_tokens`` cut."""
    from bot.deepmoji.engine import Engine
    from bot.deepmoji.files import ModelFiles

    return Engine.load(
        ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"), max_tokens=6
    )
