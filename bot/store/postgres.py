"""PostgreSQL backend over an asyncpg pool, for several bot processes sharing one database.

SQL is written with ``?`` placeholders (as SQLite wants) and numbered for PostgreSQL here.
Migrations run in a transaction holding an advisory lock, so processes that open the database
at the same time take turns and only the first one changes the schema. Read-modify-write
changes run in ``transaction()`` and lock the row they read (``for_update``).

Whatever the driver raises, on a statement or on giving a connection back to the pool, reaches
the store's callers as a ``StoreError`` (never a raw ``TimeoutError`` from a hung server), and
a connection still being given back when its caller was cancelled has its outcome collected
in the background, so nothing is left unretrieved.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from urllib.parse import urlsplit

import asyncpg

from bot.config import redact_url
from bot.store.errors import StoreError
from bot.store.schema import Row, SqlValue
from bot.throttled_log import ThrottledLog

logger = logging.getLogger(__name__)

#: Advisory lock key that serialises schema migrations ("whymoji" as an integer, fits bigint).
MIGRATION_LOCK = int.from_bytes(b"whymoji", "big")
CONNECT_TIMEOUT_S = 10.0
#: A statement slower than this fails (StoreError) instead of stalling message handling.
COMMAND_TIMEOUT_S = 10.0
POOL_SIZE = 4
_PLACEHOLDER = re.compile(r"\?")
#: What a lost or refused connection can raise besides asyncpg's own errors (kept for callers
#: that name them; the backend turns any ``Exception`` from the driver into a ``StoreError``).
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


def numbered(sql: str) -> str:
    """``?`` placeholders -> ``$1, $2, ...``."""
    counter = iter(range(1, 1 << 16))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def _describe(error: BaseException, password: str | None) -> str:
    text = f"{type(error).__name__}: {error}".rstrip(": ")
    return text.replace(password, "***") if password else text


@contextmanager
def _store_errors(where: str, password: str | None) -> Iterator[None]:
    """Anything the driver raises becomes a ``StoreError`` naming the server, without the
    password; a cancellation stays a cancellation."""
    try:
        yield
    except Exception as error:
        raise StoreError(f"PostgreSQL {where}: {_describe(error, password)}") from None


class _Connection:
    """One pooled connection, with the placeholder translation and error wording."""

    #: Locks the rows a transaction's ``SELECT`` read until it commits.
    for_update = " FOR UPDATE"

    def __init__(self, connection: asyncpg.Connection, where: str, password: str | None) -> None:
        self._connection = connection
        self._where = where
        self._password = password

    async def execute(self, sql: str, *args: SqlValue) -> None:
        with _store_errors(self._where, self._password):
            await self._connection.execute(numbered(sql), *args)

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        with _store_errors(self._where, self._password):
            return await self._connection.fetch(numbered(sql), *args)


class PostgresDatabase:
    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        """``pool``: an asyncpg pool (tests pass a fake with ``acquire``, ``release``, ``close``)."""
        self._pool = pool
        self._where = redact_url(url)
        self._password = urlsplit(url).password
        self._release_failures = ThrottledLog(logger)
        #: Connections being given back (kept referenced until done).
        self._releases: set[asyncio.Future[None]] = set()

    @classmethod
    async def connect(cls, url: str) -> PostgresDatabase:
        try:
            pool = await asyncpg.create_pool(
                dsn=url,
                min_size=1,
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
            )
        except Exception as error:  # the driver's errors, OSError, ValueError for a bad DSN, ...
            detail = _describe(error, urlsplit(url).password)
            raise StoreError(f"cannot connect to PostgreSQL at {redact_url(url)}: {detail}") from None
        return cls(pool, url)

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[_Connection]:
        """A pooled connection, given back however the caller leaves.

        A caller that failed or was cancelled does not wait for the connection to be given back
        (asyncpg resets it, which waits out a hung server); its outcome is collected and logged
        in the background. After a success, a failed give-back is logged and the result stands:
        the statement did run (a write was committed), and asyncpg drops the connection.
        """
        with _store_errors(self._where, self._password):
            connection = await self._pool.acquire(timeout=CONNECT_TIMEOUT_S)
        try:
            yield _Connection(connection, self._where, self._password)
        except BaseException:
            self._give_back(connection)
            raise
        with suppress(Exception):  # logged by _collect
            await asyncio.shield(self._give_back(connection))

    def _give_back(self, connection: asyncpg.Connection) -> asyncio.Future[None]:
        """Start giving ``connection`` back; whoever awaits the future may leave, its outcome
        is always retrieved."""
        release = asyncio.ensure_future(self._release(connection))
        self._releases.add(release)
        release.add_done_callback(self._collect)
        return release

    async def _release(self, connection: asyncpg.Connection) -> None:
        await self._pool.release(connection)

    def _collect(self, release: asyncio.Future[None]) -> None:
        self._releases.discard(release)
        if release.cancelled() or release.exception() is None:
            return
        self._release_failures.log(
            "release",
            logging.WARNING,
            "PostgreSQL %s: a connection could not be given back to the pool (%s); asyncpg drops it",
            self._where,
            _describe(release.exception() or Exception(), self._password),
        )

    async def execute(self, sql: str, *args: SqlValue) -> None:
        async with self._acquire() as connection:
            await connection.execute(sql, *args)

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        async with self._acquire() as connection:
            return await connection.fetch(sql, *args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Connection]:
        """A transaction on one connection: committed on success, rolled back on error (a
        cancelled one is rolled back when asyncpg resets the connection it gives back)."""
        async with self._acquire() as connection:
            await connection.execute("BEGIN")
            try:
                yield connection
            except asyncio.CancelledError:
                raise
            except BaseException:
                try:
                    await connection.execute("ROLLBACK")
                except StoreError:
                    pass  # the connection is broken; giving it back drops it
                raise
            await connection.execute("COMMIT")

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[_Connection]:
        """A transaction holding the migration lock until it commits or rolls back."""
        async with self.transaction() as connection:
            await connection.execute("SELECT pg_advisory_xact_lock(?)", MIGRATION_LOCK)
            yield connection

    async def close(self) -> None:
        if self._releases:
            await asyncio.wait(self._releases, timeout=CONNECT_TIMEOUT_S)
        with _store_errors(self._where, self._password):
            await self._pool.close()
