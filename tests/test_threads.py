"""The thread policy: what model.threads = 0 means, and that both runtimes follow it."""

from __future__ import annotations

import pytest
import torch

from bot.config import ModelConfig
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.threads import DEFAULT_THREADS, resolve_threads, use_threads
from bot.startup import configure_torch


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_zero_means_the_default_and_counts_are_kept():
    assert DEFAULT_THREADS == 1
    assert resolve_threads() == resolve_threads(0) == 1
    assert resolve_threads(3) == 3
    with pytest.raises(ValueError, match="0 \\(choose\\) or a positive count, got -2"):
        resolve_threads(-2)


def test_use_threads_sets_torch_and_the_onnx_runtime_session_follows():
    model = DeepMoji(vocab_size=120, embed_dim=16, hidden_size=8).eval()
    assert use_threads(2) == 2 and torch.get_num_threads() == 2
    assert model.runtime().threads == 2
    assert use_threads(0) == 1 and torch.get_num_threads() == 1
    assert model.runtime().threads == 1


def test_the_bot_runs_on_the_default_when_model_threads_is_unset():
    torch.set_num_threads(2)  # torch's own default on a 2-core machine
    configure_torch(ModelConfig())
    assert torch.get_num_threads() == DEFAULT_THREADS
    configure_torch(ModelConfig(threads=2))
    assert torch.get_num_threads() == 2
