"""SQLite backend over aiosqlite: one connection in autocommit mode, WAL for shared files.

Every statement commits on its own, so a read always sees what other processes committed.
Migrations run under ``BEGIN IMMEDIATE``, which takes the database's write lock, so two
processes opening the same file at once migrate it exactly once; the other waits (busy timeout).

An open SQLite connection keeps working on a file that was deleted or replaced meanwhile: every
change would go to a file nobody will ever open again, and the next start would begin with empty
settings. So each statement first checks that the path still names the file that was opened
(one ``stat``), and fails with a ``StoreError`` if not.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from bot.store.errors import StoreError
from bot.store.schema import Row, SqlValue

logger = logging.getLogger(__name__)

PREFIX = "sqlite:///"
MEMORY = ":memory:"
#: How long a statement waits for another process's write lock before failing.
BUSY_TIMEOUT_S = 10.0


def database_path(url: str) -> str:
    """``sqlite:///relative``, ``sqlite:////absolute`` or ``sqlite:///:memory:`` -> path."""
    if not url.startswith(PREFIX) or len(url) == len(PREFIX):
        raise StoreError(
            f"bad SQLite URL {url!r}: use sqlite:///relative/path, sqlite:////absolute/path or sqlite:///:memory:"
        )
    return url[len(PREFIX) :]


def file_identity(path: str) -> tuple[int, int]:
    """What makes a file itself, whatever its name: (device, inode)."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


class SqliteDatabase:
    def __init__(self, connection: aiosqlite.Connection, path: str) -> None:
        self._connection = connection
        self.path = path
        #: The opened file's identity; None for an in-memory database.
        self._identity: tuple[int, int] | None = None
        self._vanished = False

    @classmethod
    async def connect(cls, url: str) -> SqliteDatabase:
        path = database_path(url)
        try:
            if path != MEMORY:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            connection = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open SQLite database {path}: {error}") from None
        database = cls(connection, path)
        if path != MEMORY:
            try:
                await database._execute_when_free("PRAGMA journal_mode=WAL")
                database._identity = file_identity(path)
            except (StoreError, OSError) as error:
                await database.close()
                if isinstance(error, OSError):
                    raise StoreError(f"cannot open SQLite database {path}: {error}") from None
                raise
        return database

    def _check_file(self) -> None:
        """Fail (and log once) if the database file was deleted or replaced since it was opened."""
        if self._identity is None:
            return
        try:
            problem = None if file_identity(self.path) == self._identity else "was replaced by another file"
        except FileNotFoundError:
            problem = "was deleted"
        except OSError as error:
            problem = f"cannot be checked ({error.strerror})"
        if problem is None:
            return
        if not self._vanished:
            self._vanished = True
            logger.error(
                "SQLite database %s %s while whymoji was running; settings can be neither read nor "
                "saved until it is restored and whymoji restarted",
                self.path,
                problem,
            )
        raise StoreError(f"SQLite database {self.path} {problem} while whymoji was running")

    async def _execute_when_free(self, sql: str) -> None:
        """Retry a lock-taking statement that SQLite refused at once.

        While another connection switches the file to WAL, SQLite answers "database is locked"
        without waiting (it would deadlock otherwise); that only happens around opening, so
        opening retries for up to the busy timeout.
        """
        deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_S
        while True:
            try:
                await self._connection.execute(sql)
                return
            except sqlite3.Error as error:  # also DatabaseError: a file that is not a database
                busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                if not busy or asyncio.get_running_loop().time() > deadline:
                    raise StoreError(f"SQLite database {self.path}: {error}") from None
            await asyncio.sleep(0.02)

    async def execute(self, sql: str, *args: SqlValue) -> None:
        self._check_file()
        try:
            await self._connection.execute(sql, args)
        except sqlite3.Error as error:
            raise StoreError(f"SQLite database {self.path}: {error}") from None

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        self._check_file()
        try:
            async with self._connection.execute(sql, args) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as error:
            raise StoreError(f"SQLite database {self.path}: {error}") from None

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[SqliteDatabase]:
        """A write-locked transaction: committed on success, rolled back on error."""
        await self._execute_when_free("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            await self.execute("ROLLBACK")
            raise
        await self.execute("COMMIT")

    async def close(self) -> None:
        await self._connection.close()
