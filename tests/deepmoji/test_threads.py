"""The thread policy: what model.threads = 0 means, and that both runtimes follow it."""

from __future__ import annotations

import pytest
import torch

from bot.config import ModelConfig
from bot.deepmoji import threads as threads_module
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.threads import Threads, resolve_threads, runtime_threads, use_threads
from bot.serving.loading import configure_torch


@pytest.fixture(autouse=True)
def restore_torch_threads():
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


def test_zero_chooses_two_sleeping_runtime_threads_and_one_torch_thread(monkeypatch):
    monkeypatch.setattr(threads_module, "available_cpus", lambda: 16)
    assert resolve_threads() == resolve_threads(0) == Threads(runtime=2, torch=1)
    monkeypatch.setattr(threads_module, "available_cpus", lambda: 1)
    assert resolve_threads(0) == Threads(runtime=1, torch=1)
    assert resolve_threads(3) == Threads(runtime=3, torch=3)
    with pytest.raises(ValueError, match="0 \\(choose\\) or a positive count, got -2"):
        resolve_threads(-2)


def test_use_threads_sets_torch_and_the_onnx_runtime_sessions(monkeypatch):
    monkeypatch.setattr(threads_module, "available_cpus", lambda: 2)
    model = DeepMoji(vocab_size=120, embed_dim=16, hidden_size=8).eval()
    assert use_threads(3) == Threads(3, 3) and torch.get_num_threads() == 3
    assert model.runtime().threads == 3
    assert use_threads(0) == Threads(runtime=2, torch=1) and torch.get_num_threads() == 1
    assert model.runtime().threads == 2


def test_without_a_choice_sessions_follow_torch():
    torch.set_num_threads(3)
    assert runtime_threads() == 3


def test_the_bot_applies_the_policy_when_model_threads_is_unset(monkeypatch):
    monkeypatch.setattr(threads_module, "available_cpus", lambda: 2)
    torch.set_num_threads(2)  # torch's own default on a 2-core machine
    configure_torch(ModelConfig())
    assert torch.get_num_threads() == 1 and runtime_threads() == 2
    configure_torch(ModelConfig(threads=3))
    assert torch.get_num_threads() == 3 and runtime_threads() == 3
