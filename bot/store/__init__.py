"""Settings persistence: ``open_store(url, defaults)`` for SQLite or PostgreSQL, one schema.

The URL picks the backend: ``sqlite:///relative/path``, ``sqlite:////absolute/path``,
``sqlite:///:memory:`` or ``postgresql://user:password@host:port/database``. Opening migrates the
schema (safely when several processes open at once). Message text is never stored.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from bot.config import redact_url
from bot.store.errors import InvalidSetting, StoreError
from bot.store.schema import LATEST_VERSION, migrate
from bot.store.settings import GuildDefaults, GuildSettings, SettingsStore

__all__ = [
    "GuildDefaults",
    "GuildSettings",
    "InvalidSetting",
    "SettingsStore",
    "StoreError",
    "open_store",
]

logger = logging.getLogger(__name__)


async def _connect(url: str):
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from bot.store.sqlite import SqliteDatabase

        return await SqliteDatabase.connect(url)
    if scheme in ("postgresql", "postgres"):
        from bot.store.postgres import PostgresDatabase

        return await PostgresDatabase.connect(url)
    raise StoreError(f"unsupported database URL {redact_url(url)!r}: use sqlite:///path or postgresql://...")


async def open_store(url: str, defaults: GuildDefaults, *, schema_version: int = LATEST_VERSION) -> SettingsStore:
    """Connect, migrate the schema up to ``schema_version`` (the latest unless testing an
    upgrade), and return the store. Problems raise ``StoreError`` without the password."""
    database = await _connect(url)
    try:
        async with database.exclusive() as session:
            version = await migrate(session, schema_version)
    except BaseException:
        await database.close()
        raise
    logger.info("settings store open: %s (schema version %d)", redact_url(url), version)
    return SettingsStore(database, defaults)
