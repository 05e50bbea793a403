"""PostgreSQL backend over an asyncpg pool, for several bot processes sharing one database.

SQL is written with ``?`` placeholders (as SQLite wants) and numbered for PostgreSQL here.
Migrations run in a transaction holding an advisory lock, so processes that open the database
at the same time take turns and only the first one changes the schema.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit

import asyncpg

from bot.config import redact_url
from bot.store.errors import StoreError
from bot.store.schema import Row, SqlValue

#: Advisory lock key that serialises schema migrations ("whymoji" as an integer, fits bigint).
MIGRATION_LOCK = int.from_bytes(b"whymoji", "big")
CONNECT_TIMEOUT_S = 10.0
#: A statement slower than this fails (StoreError) instead of stalling message handling.
COMMAND_TIMEOUT_S = 10.0
POOL_SIZE = 4
_PLACEHOLDER = re.compile(r"\?")
#: What a lost or refused connection can raise besides asyncpg's own errors.
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
    """Driver errors become a ``StoreError`` naming the server, without the password."""
    try:
        yield
    except DRIVER_ERRORS as error:
        raise StoreError(f"PostgreSQL {where}: {_describe(error, password)}") from None


class _Connection:
    """One pooled connection, with the placeholder translation and error wording."""

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
        self._pool = pool
        self._where = redact_url(url)
        self._password = urlsplit(url).password

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
        except (*DRIVER_ERRORS, ValueError) as error:
            detail = _describe(error, urlsplit(url).password)
            raise StoreError(f"cannot connect to PostgreSQL at {redact_url(url)}: {detail}") from None
        return cls(pool, url)

    @asynccontextmanager
    async def _acquire(self) -> AsyncIterator[_Connection]:
        with _store_errors(self._where, self._password):
            connection = await self._pool.acquire(timeout=CONNECT_TIMEOUT_S)
        try:
            yield _Connection(connection, self._where, self._password)
        finally:
            await self._pool.release(connection)

    async def execute(self, sql: str, *args: SqlValue) -> None:
        async with self._acquire() as connection:
            await connection.execute(sql, *args)

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        async with self._acquire() as connection:
            return await connection.fetch(sql, *args)

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[_Connection]:
        """A transaction holding the migration lock until it commits or rolls back."""
        async with self._acquire() as connection:
            await connection.execute("BEGIN")
            try:
                await connection.execute("SELECT pg_advisory_xact_lock(?)", MIGRATION_LOCK)
                yield connection
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")

    async def close(self) -> None:
        await self._pool.close()
