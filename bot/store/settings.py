"""Per-server settings, enabled channels and user opt-outs, over either database backend.

Unset settings are stored as NULL and filled from ``GuildDefaults`` when read, so changing a
config default moves every server that never chose. There is no cache: every read asks the
database, so a process sees other processes' writes at once (SQLite reads take microseconds,
a PostgreSQL read one round trip). Every access is tracked, so ``status()`` tells ``/healthz``
whether the database answers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from bot.config import Config, ModerationConfig, Option, ReactionsConfig, option_of
from bot.deepmoji.emojis import EMOJIS
from bot.store.errors import InvalidSetting
from bot.store.schema import Row, SqlValue
from bot.store.status import AccessTracker, StoreStatus

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
            checked[name] = cast(SettingValue, RULES[name].check(value))  # each rule returns one of these
        except ValueError as error:
            raise InvalidSetting(f"{name}: {error}") from None
    return checked


class Database(Protocol):
    """What a backend offers the store (see ``sqlite.py`` and ``postgres.py``)."""

    async def execute(self, sql: str, *args: SqlValue) -> None: ...

    async def fetch(self, sql: str, *args: SqlValue) -> list[Row]: ...

    async def close(self) -> None: ...


class SettingsStore:
    """The bot's persistent settings; get one from ``open_store``."""

    def __init__(self, database: Database, defaults: GuildDefaults) -> None:
        self._database = database
        self._tracker = AccessTracker()
        self.defaults = defaults

    def status(self) -> StoreStatus:
        """Whether the last access failed, when one last succeeded, how long one has been waiting."""
        return self._tracker.status()

    async def _fetch(self, sql: str, *args: SqlValue) -> list[Row]:
        with self._tracker.access():
            return await self._database.fetch(sql, *args)

    async def _execute(self, sql: str, *args: SqlValue) -> None:
        with self._tracker.access():
            await self._database.execute(sql, *args)

    async def get_guild(self, guild_id: int) -> GuildSettings:
        check_id("guild_id", guild_id)
        rows = await self._fetch(f"SELECT {', '.join(COLUMNS)} FROM guild_settings WHERE guild_id = ?", guild_id)
        stored = dict(zip(COLUMNS, rows[0])) if rows else dict.fromkeys(COLUMNS)
        channels = await self._fetch("SELECT channel_id FROM enabled_channels WHERE guild_id = ?", guild_id)
        if stored["blocked"] is not None:
            stored["blocked"] = _classes_from_column(stored["blocked"])
        return self.defaults.fill(guild_id, stored, frozenset(row[0] for row in channels))

    async def update_guild(self, guild_id: int, **changes: object) -> GuildSettings:
        """Set some settings (``None`` resets one to the default) and return the result."""
        check_id("guild_id", guild_id)
        checked = checked_changes(changes)
        if checked:
            names = list(checked)
            values = [
                _classes_to_column(value) if isinstance(value, frozenset) else value for value in checked.values()
            ]
            await self._execute(
                f"INSERT INTO guild_settings (guild_id, {', '.join(names)}) "
                f"VALUES (?{', ?' * len(names)}) "
                f"ON CONFLICT (guild_id) DO UPDATE SET " + ", ".join(f"{name} = excluded.{name}" for name in names),
                guild_id,
                *values,
            )
            logger.info("guild %d settings changed: %s", guild_id, ", ".join(names))
        return await self.get_guild(guild_id)

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
        await self._database.close()
