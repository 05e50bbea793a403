"""What the store tests share: the suite's defaults and ids, empty databases, SQL beside the store.

SQLite always runs; PostgreSQL runs when ``WHYMOJI_TEST_POSTGRES_URL`` names a database the
tests may create schemas in (``.ci/run`` starts one in CI). Each PostgreSQL test gets a fresh
schema, chosen through the URL's ``search_path``, and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bot.store import GuildDefaults

POSTGRES_URL = os.environ.get("WHYMOJI_TEST_POSTGRES_URL")
DEFAULTS = GuildDefaults(top_k=3, threshold=0.1, cooldown_s=2.0, mod_threshold=0.5)
GUILD, OTHER_GUILD = 111111111111111111, 222222222222222222
CHANNEL, OTHER_CHANNEL = 333333333333333333, 444444444444444444
USER = 555555555555555555


def with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


@asynccontextmanager
async def empty_database(backend: str, tmp_path) -> AsyncIterator[str]:
    """The URL of an empty database of ``backend`` (a PostgreSQL schema dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/nested/folder/settings.sqlite3"
        return
    if not POSTGRES_URL:
        pytest.skip("set WHYMOJI_TEST_POSTGRES_URL to run the PostgreSQL tests")
    import asyncpg

    schema = f"test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(POSTGRES_URL)
    try:
        await connection.execute(f"CREATE SCHEMA {schema}")
        yield with_query(POSTGRES_URL, f"search_path={schema}")
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        await connection.close()


async def run_sql(url: str, sql: str) -> list[tuple]:
    """Run SQL beside the store, straight through the driver."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            rows = [tuple(row) for row in connection.execute(sql).fetchall()]
        connection.close()
        return rows
    import asyncpg

    connection = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await connection.fetch(sql)]
    finally:
        await connection.close()


class FakeSession:
    """A transaction of ``FakeDatabase``: its statements are writes."""

    for_update = ""

    def __init__(self, database: FakeDatabase) -> None:
        self._database = database

    async def execute(self, sql: str, *args: object) -> None:
        await self._database.execute(sql, *args)

    async def fetch(self, sql: str, *args: object) -> list[tuple]:
        return await self._database.fetch(sql, *args)


class FakeDatabase:
    """A backend that answers every read with no rows and accepts every write, until told
    otherwise: ``read_error`` / ``write_error`` make reads / writes raise it, ``hang`` makes
    every access wait until cleared (a server that stopped answering). ``accesses`` counts them."""

    def __init__(self) -> None:
        self.read_error: Exception | None = None
        self.write_error: Exception | None = None
        self.answering = asyncio.Event()
        self.answering.set()
        self.accesses = 0

    @property
    def hang(self) -> bool:
        return not self.answering.is_set()

    @hang.setter
    def hang(self, hang: bool) -> None:
        (self.answering.clear if hang else self.answering.set)()

    async def _access(self, error: Exception | None) -> None:
        self.accesses += 1
        await self.answering.wait()
        if error is not None:
            raise error

    async def fetch(self, sql: str, *args: object) -> list[tuple]:
        await self._access(self.read_error)
        return []

    async def execute(self, sql: str, *args: object) -> None:
        await self._access(self.write_error)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeSession]:
        await self._access(self.write_error)
        yield FakeSession(self)

    async def close(self) -> None:
        pass
