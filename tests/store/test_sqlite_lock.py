"""SQLite: reads carry on while another process holds the database's write lock; only writes
wait for it (or fail when it is held past the busy timeout)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.store import StoreError, open_store
from bot.store import sqlite as sqlite_backend
from tests.store.support import CHANNEL, DEFAULTS, GUILD, USER

#: A generous bound on what must come back while the lock is held: a read takes milliseconds.
PROMPTLY_S = 30.0

#: Another process taking SQLite's write lock and holding it until its stdin closes.
LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
connection.execute("ROLLBACK")
"""


@asynccontextmanager
async def write_lock_held_elsewhere(path: str) -> AsyncIterator[None]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert await asyncio.wait_for(process.stdout.readline(), PROMPTLY_S) == b"locked\n"
        yield
    finally:
        process.stdin.close()
        await asyncio.wait_for(process.wait(), PROMPTLY_S)


async def until_a_write_waits(store) -> None:
    """Until the store has handed the write to its database (where it waits for the lock)."""
    for _ in range(int(PROMPTLY_S / 0.01)):
        status = store.status()
        if status.oldest_pending_write_s is not None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the write never started")


@pytest.fixture
async def seeded(tmp_path, monkeypatch):
    """A store whose writes outwait the test's bound on reads, with a server's settings in it."""
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_S", 4 * PROMPTLY_S)
    path = str(tmp_path / "settings.sqlite3")
    store = await open_store(f"sqlite:///{path}", DEFAULTS)
    await store.update_guild(GUILD, top_k=4)
    await store.set_channel_enabled(GUILD, CHANNEL, True)
    await store.set_opted_out(USER, True)
    yield store, path
    await store.close()


async def test_reads_answer_while_a_write_waits_for_another_processes_lock(seeded):
    store, path = seeded
    async with write_lock_held_elsewhere(path):
        write = asyncio.create_task(store.update_guild(GUILD, top_k=7))
        await until_a_write_waits(store)
        # What reactions, /why and /whymoji show read, while the write waits for the lock.
        settings = await asyncio.wait_for(store.get_guild(GUILD), PROMPTLY_S)
        assert (settings.top_k, settings.enabled_channels) == (4, {CHANNEL})
        assert await asyncio.wait_for(store.is_opted_out(USER), PROMPTLY_S)
        assert not write.done(), "the write cannot have landed: the lock is still held"
    assert (await asyncio.wait_for(write, PROMPTLY_S)).top_k == 7  # once the lock is free, it lands


async def test_a_write_that_cannot_get_the_lock_fails_and_reads_still_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_S", 0.05)
    path = str(tmp_path / "settings.sqlite3")
    store = await open_store(f"sqlite:///{path}", DEFAULTS)
    try:
        async with write_lock_held_elsewhere(path):
            with pytest.raises(StoreError, match="database is locked"):
                await asyncio.wait_for(store.update_guild(GUILD, top_k=7), PROMPTLY_S)
            with pytest.raises(StoreError, match="database is locked"):
                await asyncio.wait_for(store.set_opted_out(USER, True), PROMPTLY_S)
            assert (await asyncio.wait_for(store.get_guild(GUILD), PROMPTLY_S)).top_k == 3
            assert not await asyncio.wait_for(store.is_opted_out(USER), PROMPTLY_S)
        assert (await store.update_guild(GUILD, top_k=7)).top_k == 7
    finally:
        await store.close()
