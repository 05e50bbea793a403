"""A read-only look at the settings database: can the bot use it, and at which schema version?

`whymoji check` reports it, and `whymoji run` asks it before logging in to Discord, so a database
that cannot be reached, opened or created, is not a database, or comes from a newer whymoji is
found in seconds, with the same words either way. Nothing is created or migrated.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import pathname2url

from bot.config import redact_url
from bot.store.errors import StoreError
from bot.store.schema import LATEST_VERSION, Session, current_version, require_known


async def probe_store(url: str) -> str:
    """A short description of the database at ``url``; ``StoreError`` if the bot could not use it."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        return await _probe_sqlite(url)
    if scheme in ("postgresql", "postgres"):
        return await _probe_postgres(url)
    raise StoreError(f"unsupported database URL {redact_url(url)!r}: use sqlite:///path or postgresql://...")


async def _probe_postgres(url: str) -> str:
    from bot.store.postgres import PostgresDatabase

    database = await PostgresDatabase.connect(url)
    try:
        [(exists,)] = await database.fetch("SELECT to_regclass('schema_version') IS NOT NULL")
        return f"{redact_url(url)}: {await _schema(database if exists else None)}"
    finally:
        await database.close()


async def _probe_sqlite(url: str) -> str:
    import aiosqlite

    from bot.store.sqlite import MEMORY, SqliteDatabase, database_path

    path = database_path(url)
    if path == MEMORY:
        return f"{url}: in memory, so settings are lost when the bot stops"
    file = Path(path)
    if not file.exists():  # noqa: ASYNC240 (a stat of a local path)
        _require_creatable(file)
        return f"{url}: does not exist yet; the bot creates it on start"
    if file.is_dir():  # noqa: ASYNC240
        raise StoreError(f"cannot open SQLite database {path}: it is a folder, not a file")
    if not os.access(file, os.R_OK | os.W_OK):
        raise StoreError(f"cannot open SQLite database {path}: the bot may not read and write it")
    try:
        connection = await aiosqlite.connect(f"file:{pathname2url(str(file))}?mode=ro", uri=True)
    except OSError as error:
        raise StoreError(f"cannot open SQLite database {path}: {error}") from None
    database = SqliteDatabase(connection, path)
    try:
        tables = await database.fetch("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        return f"{url}: {await _schema(database if tables else None)}"
    finally:
        await database.close()


def _require_creatable(file: Path) -> None:
    """The bot creates a missing database file and its folders: make sure it will be able to."""
    folder = file.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise StoreError(f"cannot open SQLite database {file}: {folder} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=folder, prefix=".whymoji-check-"))
    except OSError as error:
        raise StoreError(
            f"cannot open SQLite database {file}: cannot create it in {folder} ({error.strerror})"
        ) from None


async def _schema(session: Session | None) -> str:
    """The schema version in words; ``None``: a database that whymoji never opened."""
    version = 0 if session is None else await current_version(session)
    require_known(version)
    if version == LATEST_VERSION:
        return f"schema version {version}, up to date"
    return f"schema version {version}; the bot migrates it to {LATEST_VERSION} on start"
