"""Fixtures of the end-to-end tests: the small seeded model, a config for a fake Discord, and the fake."""

from __future__ import annotations

import pytest

from bot.deepmoji.engine import Engine
from bot.deepmoji.files import ModelFiles
from tests.e2e.support import TOP_K
from tests.fake_discord import FakeDiscord
from tests.fake_discord.whymoji import write_config


@pytest.fixture
def model_files(small_model_dir) -> ModelFiles:
    return ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json")


@pytest.fixture
def engine(model_files) -> Engine:
    return Engine.load(model_files)


@pytest.fixture
def make_config(tmp_path, model_files):
    """``make_config(fake, **overrides)``: a config file for ``fake`` on this test's database."""

    def make(fake: FakeDiscord, **overrides):
        return write_config(
            tmp_path / "whymoji.toml",
            fake,
            weights=model_files.weights,
            vocabulary=model_files.vocabulary,
            database=tmp_path / "settings.sqlite3",
            overrides={"reactions": {"threshold": 0.0, "top_k": TOP_K}, **overrides},
        )

    return make


@pytest.fixture
async def fake_discord():
    """A fake Discord per test; afterwards, every REST call the bot made must have had a route
    and every message body must have been within Discord's limits."""
    async with FakeDiscord(lifetime_s=120) as fake:
        yield fake
    assert fake.unknown_routes == []
    assert fake.invalid_bodies == []
