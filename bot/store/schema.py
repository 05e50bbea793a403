"""The settings schema as numbered migrations, applied in order when a store opens.

Each step is plain SQL that SQLite and PostgreSQL both accept, so there is one schema. The
``schema_version`` table records every step applied; a database from a newer whymoji is
refused rather than misread. No table has a column for message text: whymoji never stores it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.store.errors import StoreError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "per-server reaction settings and the channels reactions are enabled in",
        (
            "CREATE TABLE guild_settings ("
            " guild_id BIGINT PRIMARY KEY,"
            " top_k INTEGER,"
            " threshold DOUBLE PRECISION,"
            " cooldown_s DOUBLE PRECISION)",
            "CREATE TABLE enabled_channels ("
            " guild_id BIGINT NOT NULL,"
            " channel_id BIGINT NOT NULL,"
            " PRIMARY KEY (guild_id, channel_id))",
        ),
    ),
    Migration(
        2,
        "moderation hints and users who opted out",
        (
            "ALTER TABLE guild_settings ADD COLUMN mod_channel_id BIGINT",
            "ALTER TABLE guild_settings ADD COLUMN mod_threshold DOUBLE PRECISION",
            "CREATE TABLE opted_out_users (user_id BIGINT PRIMARY KEY)",
        ),
    ),
    Migration(
        3,
        "reactions a server can trust: readability, blocked emojis, distress silence, chance",
        (
            "ALTER TABLE guild_settings ADD COLUMN min_known DOUBLE PRECISION",
            # Class indices, comma-separated ("42,51"); "" is an empty list, NULL the default.
            "ALTER TABLE guild_settings ADD COLUMN blocked TEXT",
            "ALTER TABLE guild_settings ADD COLUMN distress DOUBLE PRECISION",
            "ALTER TABLE guild_settings ADD COLUMN chance INTEGER",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version ( version INTEGER PRIMARY KEY, description TEXT NOT NULL)"


#: A value passed to SQL: the schema's columns hold integers, reals, text and NULL.
SqlValue = int | float | str | None
#: One row as a driver returns it (a tuple, an asyncpg Record); each column has the schema's type.
Row = Sequence[Any]


class Session(Protocol):
    """One connection inside an exclusive transaction (see each backend's ``exclusive``)."""

    async def execute(self, sql: str, *args: SqlValue) -> None: ...

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]: ...


async def current_version(session: Session) -> int:
    rows = await session.fetch("SELECT MAX(version) FROM schema_version")
    return rows[0][0] or 0


def require_known(version: int) -> None:
    """A database from a newer whymoji is refused rather than misread."""
    if version > LATEST_VERSION:
        raise StoreError(
            f"the settings database has schema version {version}, newer than this whymoji "
            f"understands ({LATEST_VERSION}); upgrade whymoji"
        )


async def migrate(session: Session, target: int = LATEST_VERSION) -> int:
    """Bring the schema up to ``target`` inside the caller's exclusive transaction.

    Running it again, or from a second process that waited for the lock, finds nothing to do.
    Returns the version the database is at afterwards.
    """
    if not 0 <= target <= LATEST_VERSION:
        raise ValueError(f"schema version must be from 0 to {LATEST_VERSION}, got {target}")
    await session.execute(VERSION_TABLE)
    version = await current_version(session)
    require_known(version)
    for step in MIGRATIONS:
        if version < step.version <= target:
            for statement in step.statements:
                await session.execute(statement)
            await session.execute(
                "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                step.version,
                step.description,
            )
            logger.info("settings schema migrated to version %d: %s", step.version, step.description)
            version = step.version
    return version
