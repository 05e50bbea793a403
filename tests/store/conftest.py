"""The store fixtures: an empty database of each backend, and the store contract's implementations."""

from __future__ import annotations

import pytest

from bot.store import open_store
from tests.cog_fakes import FakeStore
from tests.store.support import DEFAULTS, empty_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request, tmp_path):
    """A database URL for an empty database, for each backend."""
    async with empty_database(request.param, tmp_path) as empty:
        yield empty


@pytest.fixture
async def store(url):
    opened = await open_store(url, DEFAULTS)
    yield opened
    await opened.close()


@pytest.fixture(params=["sqlite", "postgresql", "fake"])
async def any_store(request, tmp_path):
    """The contract's implementations: each database backend, and the cog tests' ``FakeStore``
    (so a fake that drifts from the contract fails here, not silently in the cog tests)."""
    if request.param == "fake":
        yield FakeStore.empty(DEFAULTS)
        return
    async with empty_database(request.param, tmp_path) as empty:
        opened = await open_store(empty, DEFAULTS)
        yield opened
        await opened.close()
