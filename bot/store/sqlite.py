"""SQLite backend over aiosqlite: a writer and a separate reader connection, WAL for shared files.

Every statement outside a transaction commits on its own, so a read always sees what other
processes committed. Writes go through one writer connection, one at a time (an asyncio lock:
a connection holds one transaction at a time, and a statement sent while another coroutine's
transaction is open would join it). Reads go through their own connection: in WAL mode a reader
never waits for a writer, so while another process holds the write lock (or our own write waits
for it, up to the busy timeout), reactions, ``/why`` and ``/whymoji show`` keep reading; only the
write waits, then fails. An in-memory database is one connection, reads included (a second
connection would be a second, empty database; nothing else can lock it anyway).

Read-modify-write changes run in ``transaction()``, under ``BEGIN IMMEDIATE``: it takes the
database's write lock first, so no other connection or process can change what the transaction
read before it commits. Migrations run in one too (``exclusive``), so two processes opening the
same file at once migrate it exactly once; the other waits (busy timeout).

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
#: How long a write waits for another process's write lock before failing.
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


class _WriterSession:
    """The writer connection inside ``transaction()``: its statements are the transaction's."""

    #: SQLite has no row locks: ``BEGIN IMMEDIATE`` already holds the database's write lock.
    for_update = ""

    def __init__(self, database: SqliteDatabase) -> None:
        self._database = database

    async def execute(self, sql: str, *args: SqlValue) -> None:
        await self._database._run(self._database._writer, sql, args)

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        return await self._database._rows(self._database._writer, sql, args)


class SqliteDatabase:
    def __init__(self, writer: aiosqlite.Connection, path: str, reader: aiosqlite.Connection | None = None) -> None:
        """``reader`` None: one connection does both (in memory, or the read-only probe)."""
        self._writer = writer
        self._reader = reader or writer
        self.path = path
        #: The opened file's identity; None for an in-memory database.
        self._identity: tuple[int, int] | None = None
        self._vanished = False
        #: One writer statement or transaction at a time.
        self._write_lock = asyncio.Lock()
        #: Rollbacks of cancelled transactions, running after their caller left (kept referenced).
        self._cleanups: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(cls, url: str) -> SqliteDatabase:
        path = database_path(url)
        try:
            if path != MEMORY:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            writer = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open SQLite database {path}: {error}") from None
        database = cls(writer, path)
        if path != MEMORY:
            try:
                await database._execute_when_free("PRAGMA journal_mode=WAL")
                database._identity = file_identity(path)
                database._reader = await aiosqlite.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                await database._reader.execute("PRAGMA query_only = 1")
            except (StoreError, OSError, sqlite3.Error) as error:
                await database.close()
                if isinstance(error, StoreError):
                    raise
                raise StoreError(f"cannot open SQLite database {path}: {error}") from None
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
                await self._writer.execute(sql)
                return
            except sqlite3.Error as error:  # also DatabaseError: a file that is not a database
                busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                if not busy or asyncio.get_running_loop().time() > deadline:
                    raise StoreError(f"SQLite database {self.path}: {error}") from None
            await asyncio.sleep(0.02)

    def _failure(self, error: Exception) -> StoreError:
        return StoreError(f"SQLite database {self.path}: {error}")

    async def _run(self, connection: aiosqlite.Connection, sql: str, args: tuple[SqlValue, ...]) -> None:
        self._check_file()
        try:
            await connection.execute(sql, args)
        except (sqlite3.Error, ValueError) as error:  # ValueError: aiosqlite's "no active connection"
            raise self._failure(error) from None

    async def _rows(self, connection: aiosqlite.Connection, sql: str, args: tuple[SqlValue, ...]) -> list[Row]:
        self._check_file()
        try:
            async with connection.execute(sql, args) as cursor:
                return list(await cursor.fetchall())
        except (sqlite3.Error, ValueError) as error:
            raise self._failure(error) from None

    async def execute(self, sql: str, *args: SqlValue) -> None:
        """One write statement, committed on its own."""
        async with self._write_lock:
            await self._run(self._writer, sql, args)

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        """A read, on the reader: it never waits behind a write (or a lock held elsewhere)."""
        if self._reader is self._writer:  # one connection: not in the middle of a transaction
            async with self._write_lock:
                return await self._rows(self._reader, sql, args)
        return await self._rows(self._reader, sql, args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_WriterSession]:
        """A write-locked transaction: committed on success, rolled back on error.

        A caller cancelled inside it (a timeout) leaves at once; its statements still run on
        the writer's thread, so the rollback is queued after them and the writer stays locked
        until it has run.
        """
        await self._write_lock.acquire()
        try:
            await self._run(self._writer, "BEGIN IMMEDIATE", ())
            yield _WriterSession(self)
            await self._run(self._writer, "COMMIT", ())
        except BaseException:
            cleanup = asyncio.create_task(self._roll_back_and_unlock(), name="whymoji sqlite rollback")
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
            raise
        self._write_lock.release()

    async def _roll_back_and_unlock(self) -> None:
        try:
            await self._writer.execute("ROLLBACK")
        except (sqlite3.Error, ValueError):
            pass  # no transaction was open (BEGIN failed), or the connection is gone
        finally:
            self._write_lock.release()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[_WriterSession]:
        """The migrations' transaction: as ``transaction``, retrying a refusal at opening."""
        await self._write_lock.acquire()
        try:
            await self._execute_when_free("BEGIN IMMEDIATE")
            try:
                yield _WriterSession(self)
            except BaseException:
                await self._run(self._writer, "ROLLBACK", ())
                raise
            await self._run(self._writer, "COMMIT", ())
        finally:
            self._write_lock.release()

    async def close(self) -> None:
        if self._cleanups:
            await asyncio.wait(self._cleanups)
        if self._reader is not self._writer:
            await self._reader.close()
        await self._writer.close()
