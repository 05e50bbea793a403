"""PostgreSQL under faults: whatever asyncpg raises (on a statement, or on giving a connection
back to the pool, as a hung server makes ``pool.release()`` do) reaches the bot as a
``StoreError``, so every message ends reacted or shed with a reason; nothing is left for the
event loop to report as "Future exception was never retrieved".

A fake pool stands in for asyncpg's (its ``release`` shields the reset, as asyncpg's does);
with ``WHYMOJI_TEST_POSTGRES_URL`` set, a real pool also goes through a TCP proxy that freezes,
the way a hung server looks from the bot.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import pytest

from bot.rules.shedding import ShedReason, shed_failures
from bot.store import SettingsStore, StoreError, open_store
from bot.store import postgres as postgres_backend
from bot.store.postgres import PostgresDatabase
from bot.throttled_log import ThrottledLog
from tests.store.support import DEFAULTS, GUILD, USER, empty_database

URL = "postgresql://bot:hunter2@db.example:5432/whymoji"
REDACTED = "postgresql://bot:***@db.example:5432/whymoji"
#: A generous bound on what must finish (a frozen server is given up on after 0.5 s here).
PROMPTLY_S = 30.0


class FakeConnection:
    """A pooled connection: answers with ``rows``, or raises the pool's ``statement_error``."""

    def __init__(self, pool: FakePool) -> None:
        self._pool = pool

    async def execute(self, sql: str, *args: object) -> str:
        await self._answer()
        return "OK"

    async def fetch(self, sql: str, *args: object) -> list[tuple]:
        await self._answer()
        return self._pool.rows

    async def _answer(self) -> None:
        if self._pool.statement_error is not None:
            raise self._pool.statement_error


class FakePool:
    """asyncpg's pool as the backend uses it. ``release`` resets the connection under
    ``asyncio.shield`` (as asyncpg does, so a cancelled caller does not stop it) and raises
    ``release_error`` once ``release_gate`` opens."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.statement_error: BaseException | None = None
        self.acquire_error: BaseException | None = None
        self.release_error: BaseException | None = None
        self.release_gate = asyncio.Event()
        self.release_gate.set()
        self.releasing = asyncio.Event()
        self.released = 0

    async def acquire(self, *, timeout: float | None = None) -> FakeConnection:
        if self.acquire_error is not None:
            raise self.acquire_error
        return FakeConnection(self)

    async def release(self, connection: FakeConnection, *, timeout: float | None = None) -> None:
        return await asyncio.shield(self._reset(connection))

    async def _reset(self, connection: FakeConnection) -> None:
        self.releasing.set()
        await self.release_gate.wait()
        self.released += 1
        if self.release_error is not None:
            raise self.release_error

    async def close(self) -> None:
        pass


@pytest.fixture
def pool() -> FakePool:
    return FakePool()


@pytest.fixture
async def store(pool) -> AsyncIterator[SettingsStore]:
    opened = SettingsStore(PostgresDatabase(pool, URL), DEFAULTS)
    yield opened
    await opened.close()


@pytest.fixture
async def unretrieved() -> AsyncIterator[list[dict]]:
    """What the event loop reports as never retrieved (or any other loop error) during the test."""
    loop = asyncio.get_running_loop()
    reported: list[dict] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    yield reported
    loop.set_exception_handler(None)


def collect_garbage() -> None:
    """An unretrieved failure is reported when its future is collected."""
    for _ in range(3):
        gc.collect()


async def test_a_release_that_times_out_after_a_failed_statement_is_a_store_error(store, pool, unretrieved):
    """A hung server: the statement times out, then giving the connection back does too."""
    pool.statement_error, pool.release_error = TimeoutError(), TimeoutError()
    with pytest.raises(StoreError, match="PostgreSQL postgresql://bot:\\*\\*\\*@db.example:5432/whymoji: TimeoutError"):
        await store.get_guild(GUILD)
    await asyncio.wait_for(store.close(), PROMPTLY_S)  # waits for the give-back to finish
    collect_garbage()
    await asyncio.sleep(0)
    assert unretrieved == []
    assert store.status().failing


async def test_a_release_that_fails_after_a_successful_statement_keeps_the_result(store, pool, caplog):
    """The statement ran (a write is committed): its result stands; the failure is logged."""
    pool.rows, pool.release_error = [(1,)], TimeoutError()
    assert await store.is_opted_out(USER)
    assert await store.is_opted_out(USER)
    lines = [record.getMessage() for record in caplog.records if "given back" in record.getMessage()]
    assert lines == [
        f"PostgreSQL {REDACTED}: a connection could not be given back to the pool (TimeoutError); asyncpg drops it"
    ]
    assert not store.status().failing


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError(),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.InternalClientError("the pool is closing"),
        ConnectionResetError(104, "Connection reset by peer"),
        RuntimeError("something asyncpg never documented"),
    ],
    ids=type,
)
@pytest.mark.parametrize("where", ["statement", "acquire", "release"])
async def test_whatever_the_driver_raises_a_failed_access_is_a_store_error(store, pool, error, where):
    if where == "acquire":
        pool.acquire_error = error
    elif where == "statement":
        pool.statement_error = error
    else:  # the statement timed out, then giving its connection back fails too
        pool.statement_error, pool.release_error = TimeoutError(), error
    for access in (store.get_guild(GUILD), store.update_guild(GUILD, top_k=2), store.set_opted_out(USER, True)):
        with pytest.raises(StoreError, match=re.escape(f"PostgreSQL {REDACTED}: ")):
            await access


async def test_a_caller_cancelled_while_its_connection_is_given_back_leaves_nothing_unretrieved(
    store, pool, unretrieved
):
    pool.statement_error, pool.release_error = TimeoutError(), TimeoutError()
    pool.release_gate.clear()
    read = asyncio.create_task(store.get_guild(GUILD))
    await asyncio.wait_for(pool.releasing.wait(), PROMPTLY_S)
    read.cancel()  # as a shutdown or a caller's own timeout does
    done, _ = await asyncio.wait([read], timeout=PROMPTLY_S)
    assert done == {read}, "a cancelled caller does not wait for the give-back"
    pool.release_gate.set()
    await asyncio.wait_for(store.close(), PROMPTLY_S)
    assert pool.released == 1
    del read, done
    collect_garbage()
    await asyncio.sleep(0)
    assert unretrieved == []


async def test_every_message_ends_reacted_or_shed_while_give_backs_fail(store, pool, unretrieved):
    """What the reactions feature does with each message (``shed_failures`` around its reads),
    50 messages while the server hangs: each is either read or shed as store_unavailable."""
    pool.statement_error, pool.release_error = TimeoutError(), TimeoutError()
    shed: list[ShedReason] = []
    read: list[int] = []

    async def message(number: int) -> None:
        with shed_failures(shed.append, ThrottledLog(logging.getLogger("test")), "messages get no reactions"):
            await store.get_guild(GUILD)
            await store.is_opted_out(USER + number)
            read.append(number)

    await asyncio.gather(*(message(number) for number in range(50)))
    assert (len(read), shed) == (0, [ShedReason.STORE_UNAVAILABLE] * 50)
    await store.close()
    collect_garbage()
    await asyncio.sleep(0)
    assert unretrieved == []


# -- a real pool and a server that hangs (needs WHYMOJI_TEST_POSTGRES_URL) ----------------------


class FreezingProxy:
    """A TCP proxy in front of PostgreSQL that can stop passing bytes (``frozen``): to the bot,
    a server that hangs, connections open and nothing answered, new connections included."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def frozen(self) -> bool:
        return not self._flowing.is_set()

    @frozen.setter
    def frozen(self, frozen: bool) -> None:
        (self._flowing.clear if frozen else self._flowing.set)()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        pipes = [self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer)]
        for pipe in pipes:
            task = asyncio.ensure_future(pipe)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)


@asynccontextmanager
async def through_a_proxy(url: str) -> AsyncIterator[tuple[str, FreezingProxy]]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    proxy = FreezingProxy(parts.hostname, parts.port)
    await proxy.start()
    try:
        yield url.replace(f"@{parts.hostname}:{parts.port}/", f"@127.0.0.1:{proxy.port}/", 1), proxy
    finally:
        await proxy.close()


async def test_a_hung_server_sheds_every_message_and_the_store_recovers(tmp_path, monkeypatch, unretrieved):
    monkeypatch.setattr(postgres_backend, "COMMAND_TIMEOUT_S", 0.5)
    monkeypatch.setattr(postgres_backend, "CONNECT_TIMEOUT_S", 0.5)
    async with empty_database("postgresql", tmp_path) as url, through_a_proxy(url) as (proxied, proxy):
        store = await open_store(proxied, DEFAULTS)
        try:
            await store.update_guild(GUILD, top_k=4)
            proxy.frozen = True
            outcomes: list[object] = []

            async def message(number: int) -> None:
                try:
                    await store.get_guild(GUILD)
                    await store.is_opted_out(USER + number)
                    outcomes.append("read")
                except StoreError:
                    outcomes.append("shed")
                except BaseException as error:  # what would be lost: neither reacted nor shed
                    outcomes.append(error)

            await asyncio.wait_for(asyncio.gather(*(message(number) for number in range(50))), PROMPTLY_S)
            assert [outcome for outcome in outcomes if outcome not in ("read", "shed")] == []
            assert "shed" in outcomes
            proxy.frozen = False
            for _ in range(100):  # asyncpg replaces the connections it dropped
                try:
                    assert (await store.get_guild(GUILD)).top_k == 4
                    break
                except StoreError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the store did not recover once the server answered again")
        finally:
            await store.close()
    collect_garbage()
    await asyncio.sleep(0)
    assert [context.get("message") for context in unretrieved] == []
