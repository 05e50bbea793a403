"""The store tells /healthz how it is doing, and a SQLite file that vanished is noticed."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from bot.store import GuildDefaults, SettingsStore, StoreError, open_store
from bot.store import sqlite as sqlite_backend
from bot.store.status import READ, WRITE, AccessTracker
from tests.conftest import Clock
from tests.store.support import FakeDatabase

#: A generous bound on what must finish; the checks themselves are given far less.
PROMPTLY_S = 30.0

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


# -- reads and writes apart: a store whose writes fail is degraded, not down -------------------


def test_failed_writes_are_told_apart_from_failed_reads():
    tracker = AccessTracker(Clock())
    with pytest.raises(StoreError), tracker.access(WRITE):
        raise StoreError("database is locked")
    with tracker.access(READ):
        pass
    status = tracker.status()
    assert not status.failing and status.error is None
    assert status.writes_failing and status.write_error == "database is locked"
    with tracker.access(WRITE):
        pass
    assert not tracker.status().writes_failing


async def test_a_waiting_write_ages_apart_from_reads():
    clock = Clock()
    tracker = AccessTracker(clock)
    never = asyncio.Event()

    async def waiting_write():
        with tracker.access(WRITE):
            await never.wait()

    write = asyncio.create_task(waiting_write())
    await asyncio.sleep(0)
    clock.now += 8
    status = tracker.status()
    assert (status.oldest_pending_write_s, status.oldest_pending_s) == (8, None)
    write.cancel()
    await asyncio.wait([write])


# -- the store's own checks: a quiet server's /healthz tells the present ----------------------


@pytest.fixture
async def fake():
    database = FakeDatabase()
    store = SettingsStore(database, DEFAULTS)
    yield database, store
    database.hang = False
    await store.close()


async def test_a_check_reads_and_writes_and_clears_what_failed(fake):
    database, store = fake
    database.read_error = database.write_error = StoreError("PostgreSQL db:5432: ConnectionRefusedError")
    await store.check()
    status = store.status()
    assert status.failing and status.writes_failing and "ConnectionRefusedError" in status.error
    database.read_error = database.write_error = None
    await store.check()
    status = store.status()
    assert not status.failing and not status.writes_failing and status.last_ok_s_ago is not None


async def test_a_check_of_a_server_that_stopped_answering_fails_within_its_timeout(fake):
    database, store = fake
    database.hang = True
    await asyncio.wait_for(store.check(timeout_s=0.01), PROMPTLY_S)
    status = store.status()
    assert status.error == "no answer to a read within 0.01 s"
    assert status.write_error == "no answer to a write within 0.01 s"
    assert status.oldest_pending_s is None and status.oldest_pending_write_s is None  # given up, not pending


async def test_writes_failing_while_reads_work_is_told_as_such(fake):
    database, store = fake
    database.write_error = StoreError("PostgreSQL db:5432: cannot execute UPDATE in a read-only transaction")
    await store.check()
    status = store.status()
    assert not status.failing and status.writes_failing and "read-only" in status.write_error


async def test_checks_run_on_their_own_schedule_until_the_store_closes(fake):
    database, store = fake
    intervals: list[float] = []
    tick = asyncio.Queue()

    async def sleep(seconds: float) -> None:  # each interval lasts until the test says so
        intervals.append(seconds)
        await tick.get()

    checks = store.start_checks(interval_s=4.0, sleep=sleep)
    assert store.start_checks() is checks  # started once
    accesses = 0
    for expected in (1, 2, 3):
        for _ in range(1000):
            if checks.checks == expected:
                break
            await asyncio.sleep(0)
        assert checks.checks == expected and database.accesses > accesses  # each check asks the database
        accesses = database.accesses
        tick.put_nowait(None)
    assert intervals[:2] == [4.0, 4.0]
    await store.close()
    assert not checks.running


async def test_a_write_lock_held_elsewhere_is_a_write_problem_only(tmp_path, monkeypatch):
    """SQLite: while another process holds the write lock, the check's read answers and its
    write is given up on after the timeout (it goes on waiting in SQLite's thread)."""
    from tests.store.test_sqlite_lock import write_lock_held_elsewhere

    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_S", 4 * PROMPTLY_S)
    path = str(tmp_path / "settings.sqlite3")
    store = await open_store(f"sqlite:///{path}", DEFAULTS)
    try:
        async with write_lock_held_elsewhere(path):
            await asyncio.wait_for(store.check(timeout_s=0.2), PROMPTLY_S)
            status = store.status()
            assert not status.failing and status.write_error == "no answer to a write within 0.2 s"
        await asyncio.wait_for(store.check(), PROMPTLY_S)  # the lock is free: the write answers
        assert not store.status().writes_failing
    finally:
        await store.close()
