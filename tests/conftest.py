"""Fixtures shared by the whole suite.

``shared_dir`` is the project's ``../shared`` material (vocabulary, conformance data, corpus);
tests that need it skip cleanly when it is absent. Everything else runs on small models made here.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Run torch on one thread: tests check behaviour, not speed, and on a busy host
    OpenMP threads spin-wait for each other (a 7 ms predict was seen taking ~1 s)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def thread_choice_is_per_test(monkeypatch):
    """A test (or a bot it starts) may choose threads with ``use_threads``; undo it afterwards,
    so ONNX Runtime sessions elsewhere follow torch's one thread."""
    from bot.deepmoji import threads

    monkeypatch.setattr(threads, "_runtime_threads", None)


def shared_path() -> Path:
    """Where ``../shared`` is: ``WHYMOJI_SHARED`` if set, else beside the checkout."""
    return Path(os.environ.get("WHYMOJI_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not (path / "deepmoji" / "vocabulary.json").is_file():
        pytest.skip(f"shared material not found at {path}")
    return path


#: Words of the small test vocabulary, after DeepMoji's special tokens (ids 0-9).
SMALL_WORDS = (
    "the . and you , a for to i ! it is my of that in this me so ? love lol what ..  !! "
    "not be just was have on like your no do all are but hate happy sad angry wow good bad "
    "great day much can don't i'm it's why how omg haha :) :( <3 thanks sorry kill die stupid "
    "idiot fun miss cute nice best worst ever hello world we they he she go get know want need "
    "feel think really very too now time people one new who ok yes oh :d"
).split()

SPECIAL_TOKENS = (
    "CUSTOM_MASK CUSTOM_UNKNOWN CUSTOM_AT CUSTOM_URL CUSTOM_NUMBER CUSTOM_BREAK "
    "CUSTOM_BLANK_6 CUSTOM_BLANK_7 CUSTOM_BLANK_8 CUSTOM_BLANK_9"
).split()


def small_vocabulary() -> dict[str, int]:
    """A ~100-token vocabulary with DeepMoji's special tokens at their published ids."""
    return {word: index for index, word in enumerate(SPECIAL_TOKENS + list(dict.fromkeys(SMALL_WORDS)))}


@pytest.fixture(scope="session")
def small_model_dir(tmp_path_factory) -> Path:
    """A folder with ``pytorch_model.bin`` (seeded, small dimensions) and ``vocabulary.json``.

    The checkpoint has the published key set with small shapes, so every code path that loads
    real files runs in tests without the 85 MB download.
    """
    import json

    import torch

    from bot.deepmoji.architecture import checkpoint_shapes
    from bot.deepmoji.seeded import seeded_state_dict

    folder = tmp_path_factory.mktemp("small-model")
    vocabulary = small_vocabulary()
    shapes = checkpoint_shapes(vocab_size=len(vocabulary), embed_dim=16, hidden_size=8)
    torch.save(seeded_state_dict(seed=7, shapes=shapes), folder / "pytorch_model.bin")
    (folder / "vocabulary.json").write_text(json.dumps(vocabulary))
    return folder


class Clock:
    """A clock that stands still until a test moves ``now``: pauses and ages without waiting."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def free_port() -> int:
    """A 127.0.0.1 port that nothing listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def hub(small_model_dir):
    """A fake Hugging Face Hub on 127.0.0.1 serving the small model's files."""
    from tests.fake_hub import FakeHub

    server = FakeHub.from_folder(small_model_dir).start()
    yield server
    server.stop()


@pytest.fixture
def model_args(small_model_dir) -> list[str]:
    """The CLI's model flags for the small seeded model: local files, never the Hub."""
    return [
        "--weights",
        str(small_model_dir / "pytorch_model.bin"),
        "--vocabulary",
        str(small_model_dir / "vocabulary.json"),
        "--offline",
    ]
