"""Per-server settings, enabled channels and user opt-outs, over either database backend.

Unset settings are stored as NULL and filled from ``GuildDefaults`` when read, so changing a
config default moves every server that never chose. There is no cache: every read asks the
database, so a process sees other processes' writes at once (SQLite reads take microseconds,
a PostgreSQL read one round trip). Every change is one statement or one transaction: a
read-modify-write (``change_blocked``) locks what it read until it commits, so two managers
changing the same list at once both get their change, and every change returns the settings
as it left them, read in the same transaction. Every access is tracked, and ``start_checks``
has the store look at its database on a schedule of its own (a read and a write that change
nothing), so ``status()`` tells ``/healthz`` whether reads and writes work now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar, cast

from bot.config import Config, ModerationConfig, Option, ReactionsConfig, option_of
from bot.deepmoji.emojis import EMOJIS
from bot.store.errors import InvalidSetting, StoreError
from bot.store.schema import Row, SqlValue
from bot.store.status import CHECK_INTERVAL_S, CHECK_TIMEOUT_S, READ, WRITE, AccessTracker, StoreChecks, StoreStatus

logger = logging.getLogger(__name__)

Value = TypeVar("Value")

#: Discord ids are positive 64-bit snowflakes; the columns are signed 64-bit integers.
MAX_ID = (1 << 63) - 1


@dataclass(frozen=True)
class GuildDefaults:
    """What a server gets for every setting it never chose (from the config file).

    The reaction rules default to the config's own defaults, so code that names only the
    first four settings keeps working.
    """

    top_k: int
    threshold: float
    cooldown_s: float
    mod_threshold: float
    min_known: float = ReactionsConfig.min_known
    blocked: frozenset[int] = ReactionsConfig.blocked
    distress: float = ReactionsConfig.distress
    chance: int = ReactionsConfig.chance

    @classmethod
    def from_config(cls, config: Config) -> GuildDefaults:
        return cls(
            top_k=config.reactions.top_k,
            threshold=config.reactions.threshold,
            cooldown_s=config.reactions.cooldown_s,
            mod_threshold=config.moderation.threshold,
            min_known=config.reactions.min_known,
            blocked=config.reactions.blocked,
            distress=config.reactions.distress,
            chance=config.reactions.chance,
        )

    def fill(self, guild_id: int, stored: Mapping[str, object], enabled_channels: frozenset[int]) -> GuildSettings:
        """A server's settings from what it chose (``stored``: a column's value, None where it
        never chose, ``blocked`` as class indices): the defaults fill the rest."""

        def chosen(name: str, default: Value) -> Value:
            value = stored.get(name)
            return default if value is None else cast(Value, value)

        return GuildSettings(
            guild_id=guild_id,
            enabled_channels=enabled_channels,
            top_k=chosen("top_k", self.top_k),
            threshold=chosen("threshold", self.threshold),
            cooldown_s=chosen("cooldown_s", self.cooldown_s),
            mod_channel_id=cast("int | None", stored.get("mod_channel_id")),
            mod_threshold=chosen("mod_threshold", self.mod_threshold),
            min_known=chosen("min_known", self.min_known),
            blocked=chosen("blocked", self.blocked),
            distress=chosen("distress", self.distress),
            chance=chosen("chance", self.chance),
        )


@dataclass(frozen=True)
class GuildSettings:
    guild_id: int
    enabled_channels: frozenset[int]
    top_k: int
    threshold: float
    cooldown_s: float
    mod_channel_id: int | None
    mod_threshold: float
    min_known: float
    blocked: frozenset[int]  #: class indices into ``EMOJIS``
    distress: float
    chance: int  #: percent


def check_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_ID:
        raise InvalidSetting(f"{name} must be a Discord id (a positive 64-bit integer), got {value!r}")
    return value


def _id_rule(name: str) -> Option:
    """An Option-shaped rule for a channel id setting."""

    def check(value: object) -> int:
        return check_id(name, value)

    return Option(check, int)


def _class_set_rule() -> Option:
    """A set of emoji class indices (``blocked``); the cog turns typed emojis into these."""

    def check(value: object) -> frozenset[int]:
        if not isinstance(value, set | frozenset | list | tuple) or not all(
            isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(EMOJIS) for index in value
        ):
            raise ValueError(f"must be a set of emoji class indices from 0 to {len(EMOJIS) - 1}, got {value!r}")
        return frozenset(value)

    return Option(check, str)


def _classes_to_column(classes: frozenset[int]) -> str:
    """``blocked`` as stored: sorted indices, comma-separated; ``""`` is a chosen empty list."""
    return ",".join(str(index) for index in sorted(classes))


def _classes_from_column(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part)


#: Column -> the rule its values obey; the same rules as the config defaults they override.
RULES: dict[str, Option] = {
    "top_k": option_of(ReactionsConfig, "top_k"),
    "threshold": option_of(ReactionsConfig, "threshold"),
    "cooldown_s": option_of(ReactionsConfig, "cooldown_s"),
    "mod_channel_id": _id_rule("mod_channel_id"),
    "mod_threshold": option_of(ModerationConfig, "threshold"),
    "min_known": option_of(ReactionsConfig, "min_known"),
    "blocked": _class_set_rule(),
    "distress": option_of(ReactionsConfig, "distress"),
    "chance": option_of(ReactionsConfig, "chance"),
}
COLUMNS = tuple(RULES)


#: A setting as checked: a number, a channel id, or emoji classes (``blocked``); None resets it.
SettingValue = int | float | frozenset[int] | None


def checked_changes(changes: Mapping[str, object]) -> dict[str, SettingValue]:
    """Validate ``update_guild`` arguments; ``None`` stays ``None`` (back to the default)."""
    unknown = sorted(set(changes) - set(RULES))
    if unknown:
        raise InvalidSetting(f"unknown setting {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    checked: dict[str, SettingValue] = {}
    for name, value in changes.items():
        if value is None:
            checked[name] = None
            continue
        try:
            value = RULES[name].check(value)
        except ValueError as error:
            raise InvalidSetting(f"{name}: {error}") from None
        if isinstance(value, float):
            value += 0.0  # -0.0 is 0: stored, shown and confirmed as "0", never "-0"
        checked[name] = cast(SettingValue, value)  # each rule returns one of these
    return checked


class Session(Protocol):
    """A backend's connection inside ``Database.transaction()``."""

    #: Appended to a transaction's ``SELECT`` to lock the rows it reads until it commits
    #: (PostgreSQL's row locks); "" where the transaction holds the whole database's write lock.
    for_update: str

    async def execute(self, sql: str, *args: SqlValue) -> None: ...

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]: ...


class Database(Protocol):
    """What a backend offers the store (see ``sqlite.py`` and ``postgres.py``): reads, single
    writes, and transactions in which a read-modify-write cannot lose another's change."""

    async def execute(self, sql: str, *args: SqlValue) -> None: ...

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]: ...

    def transaction(self) -> AbstractAsyncContextManager[Session]: ...

    async def close(self) -> None: ...


#: Makes sure a server has a row, so a transaction has one to lock; an all-NULL row means
#: "every setting at its default", the same as no row.
_ENSURE_ROW = "INSERT INTO guild_settings (guild_id) VALUES (?) ON CONFLICT (guild_id) DO NOTHING"
#: The checks' write: takes the write lock (or, on PostgreSQL, checks the right to write and
#: that the server accepts writes) and changes nothing, since no server has id 0.
_CHECK_WRITE = "UPDATE guild_settings SET top_k = top_k WHERE guild_id = 0"


class SettingsStore:
    """The bot's persistent settings; get one from ``open_store``."""

    def __init__(self, database: Database, defaults: GuildDefaults) -> None:
        self._database = database
        self._tracker = AccessTracker()
        self._checks: StoreChecks | None = None
        self.defaults = defaults

    def status(self) -> StoreStatus:
        """Whether the last read and the last write failed, when an access last succeeded, how
        long one has been waiting."""
        return self._tracker.status()

    async def _fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        with self._tracker.access(READ):
            return await self._database.fetch(sql, *args)

    async def _execute(self, sql: str, *args: SqlValue) -> None:
        with self._tracker.access(WRITE):
            await self._database.execute(sql, *args)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Session]:
        with self._tracker.access(WRITE):
            async with self._database.transaction() as session:
                yield session

    # -- health checks -------------------------------------------------------------------

    async def check(self, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        """One look at the database for ``/healthz``: a read and a write that changes nothing,
        each given ``timeout_s``; what they find is in ``status()``."""
        for kind, access in ((READ, self._check_read), (WRITE, self._check_write)):
            try:
                async with asyncio.timeout(timeout_s):
                    await access()
            except TimeoutError:
                self._tracker.record(kind, f"no answer to a {kind} within {timeout_s:g} s")
            except StoreError:
                pass  # recorded by the access itself

    async def _check_read(self) -> None:
        await self._fetch("SELECT 1")

    async def _check_write(self) -> None:
        async with self._transaction() as session:
            await session.execute(_CHECK_WRITE)

    def start_checks(
        self, interval_s: float = CHECK_INTERVAL_S, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    ) -> StoreChecks:
        """Check the database every ``interval_s`` until ``close`` (the running bot does)."""
        if self._checks is None:
            self._checks = StoreChecks(self.check, interval_s=interval_s, sleep=sleep)
            self._checks.start()
        return self._checks

    # -- settings ------------------------------------------------------------------------

    async def get_guild(self, guild_id: int) -> GuildSettings:
        check_id("guild_id", guild_id)
        with self._tracker.access(READ):
            return await self._read_guild(self._database, guild_id)

    async def _read_guild(self, session: Session | Database, guild_id: int, for_update: str = "") -> GuildSettings:
        rows = await session.fetch(
            f"SELECT {', '.join(COLUMNS)} FROM guild_settings WHERE guild_id = ?{for_update}", guild_id
        )
        stored = dict(zip(COLUMNS, rows[0])) if rows else dict.fromkeys(COLUMNS)
        channels = await session.fetch("SELECT channel_id FROM enabled_channels WHERE guild_id = ?", guild_id)
        if stored["blocked"] is not None:
            stored["blocked"] = _classes_from_column(stored["blocked"])
        return self.defaults.fill(guild_id, stored, frozenset(row[0] for row in channels))

    async def update_guild(self, guild_id: int, **changes: object) -> GuildSettings:
        """Set some settings (``None`` resets one to the default) and return the settings as this
        change left them (read in the same transaction)."""
        check_id("guild_id", guild_id)
        checked = checked_changes(changes)
        if not checked:
            return await self.get_guild(guild_id)
        names = list(checked)
        values = [_classes_to_column(value) if isinstance(value, frozenset) else value for value in checked.values()]
        async with self._transaction() as session:
            await session.execute(
                f"INSERT INTO guild_settings (guild_id, {', '.join(names)}) "
                f"VALUES (?{', ?' * len(names)}) "
                f"ON CONFLICT (guild_id) DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in names),
                guild_id,
                *values,
            )
            settings = await self._read_guild(session, guild_id)
        logger.info("guild %d settings changed: %s", guild_id, ", ".join(names))
        return settings

    async def change_blocked(
        self, guild_id: int, *, block: Iterable[int] = (), unblock: Iterable[int] = ()
    ) -> GuildSettings:
        """Add ``block`` to the server's blocked emojis and take ``unblock`` out, as one
        transaction that locks the server's row first: two managers changing the list at once
        both get their change. Returns the settings as this change left them."""
        check_id("guild_id", guild_id)
        added, removed = (
            cast("frozenset[int]", checked_changes({"blocked": set(classes)})["blocked"])
            for classes in (block, unblock)
        )
        async with self._transaction() as session:
            await session.execute(_ENSURE_ROW, guild_id)
            current = await self._read_guild(session, guild_id, session.for_update)
            blocked = (current.blocked | added) - removed
            await session.execute(
                "UPDATE guild_settings SET blocked = ? WHERE guild_id = ?", _classes_to_column(blocked), guild_id
            )
        logger.info("guild %d settings changed: blocked", guild_id)
        return replace(current, blocked=blocked)

    async def set_channel_enabled(self, guild_id: int, channel_id: int, enabled: bool) -> None:
        check_id("guild_id", guild_id)
        check_id("channel_id", channel_id)
        if enabled:
            await self._execute(
                "INSERT INTO enabled_channels (guild_id, channel_id) VALUES (?, ?) "
                "ON CONFLICT (guild_id, channel_id) DO NOTHING",
                guild_id,
                channel_id,
            )
        else:
            await self._execute(
                "DELETE FROM enabled_channels WHERE guild_id = ? AND channel_id = ?",
                guild_id,
                channel_id,
            )

    async def is_opted_out(self, user_id: int) -> bool:
        check_id("user_id", user_id)
        rows = await self._fetch("SELECT 1 FROM opted_out_users WHERE user_id = ?", user_id)
        return bool(rows)

    async def set_opted_out(self, user_id: int, opted_out: bool) -> None:
        check_id("user_id", user_id)
        if opted_out:
            await self._execute(
                "INSERT INTO opted_out_users (user_id) VALUES (?) ON CONFLICT (user_id) DO NOTHING",
                user_id,
            )
        else:
            await self._execute("DELETE FROM opted_out_users WHERE user_id = ?", user_id)

    async def close(self) -> None:
        if self._checks is not None:
            await self._checks.stop()
        await self._database.close()
