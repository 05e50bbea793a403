"""The store tells /healthz how it is doing, and a SQLite file that vanished is noticed."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from bot.store import GuildDefaults, StoreError, open_store
from bot.store.status import AccessTracker
from tests.conftest import Clock

DEFAULTS = GuildDefaults(top_k=3, threshold=0.1, cooldown_s=2.0, mod_threshold=0.5)
GUILD, USER = 111111111111111111, 555555555555555555


def test_a_new_tracker_knows_nothing_bad():
    status = AccessTracker(Clock()).status()
    assert (status.failing, status.error, status.last_ok_s_ago, status.oldest_pending_s) == (False, None, None, None)


def test_a_failed_access_marks_the_store_failing_until_one_succeeds():
    clock = Clock()
    tracker = AccessTracker(clock)
    with tracker.access():
        pass
    clock.now += 7
    with pytest.raises(StoreError), tracker.access():
        raise StoreError("PostgreSQL db:5432: ConnectionRefusedError")
    status = tracker.status()
    assert status.failing and status.error == "PostgreSQL db:5432: ConnectionRefusedError"
    assert status.last_ok_s_ago == 7
    with tracker.access():
        pass
    assert not tracker.status().failing and tracker.status().error is None


async def test_an_unanswered_access_ages_and_a_cancelled_one_says_nothing():
    clock = Clock()
    tracker = AccessTracker(clock)
    never = asyncio.Event()

    async def hung_access():
        with tracker.access():
            await never.wait()

    hung = asyncio.create_task(hung_access())
    await asyncio.sleep(0)
    clock.now += 3
    with tracker.access():
        assert tracker.status().oldest_pending_s == 3  # the oldest, not the newest
    clock.now += 4
    assert tracker.status().oldest_pending_s == 7
    hung.cancel()
    with pytest.raises(asyncio.CancelledError):
        await hung
    status = tracker.status()
    assert status.oldest_pending_s is None and not status.failing


async def test_the_store_reports_its_accesses(tmp_path):
    store = await open_store(f"sqlite:///{tmp_path}/settings.sqlite3", DEFAULTS)
    try:
        assert store.status().last_ok_s_ago is None  # opening migrates; only the bot's accesses count
        await store.get_guild(GUILD)
        status = store.status()
        assert not status.failing and status.last_ok_s_ago is not None and status.oldest_pending_s is None
    finally:
        await store.close()


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_sqlite_file_that_vanished_is_noticed_not_written_blindly(tmp_path, caplog, how):
    path = tmp_path / "settings.sqlite3"
    store = await open_store(f"sqlite:///{path}", DEFAULTS)
    try:
        await store.set_opted_out(USER, True)
        os.remove(path)
        if how == "replaced":
            (tmp_path / "other.sqlite3").write_bytes(b"")
            os.rename(tmp_path / "other.sqlite3", path)
        caplog.set_level(logging.ERROR, logger="bot.store.sqlite")
        for _ in range(3):
            with pytest.raises(StoreError, match=f"settings.sqlite3 was {how}"):
                await store.update_guild(GUILD, top_k=5)
        with pytest.raises(StoreError, match=how):
            await store.is_opted_out(USER)
        status = store.status()
        assert status.failing and how in status.error
        errors = [record for record in caplog.records if record.levelno == logging.ERROR]
        assert len(errors) == 1 and how in errors[0].getMessage()  # said once, not per access
    finally:
        await store.close()
    if how == "deleted":
        assert not path.exists()  # nothing was written to a new file either
