"""Light stand-ins for discord.py objects and the bot's services, for testing cogs directly.

Only what the cogs touch is modelled. Discord errors are the real ``discord.HTTPException``
classes built from a fake response, so the cogs' ``except`` clauses are exercised for real.
The end-to-end suite (fake Discord over HTTP and websocket) covers the gateway path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import discord
import numpy as np

from bot.deepmoji.emojis import EMOJIS
from bot.deepmoji.engine import DEFAULT_MAX_TOKENS, Engine
from bot.deepmoji.tokenizer import Tokenizer
from bot.explain.explanation import Explanation, WordScore
from bot.metrics import Metrics
from bot.rules.explanation_limits import ExplanationLimits
from bot.rules.kept import KeptExplanations
from bot.serving.predictions import MessagePredictions
from bot.store import GuildDefaults, GuildSettings
from bot.store.settings import RULES, SettingValue, check_id, checked_changes
from tests.conftest import small_vocabulary

GUILD_ID = 1000
CHANNEL_ID = 2000
MOD_CHANNEL_ID = 2999
AUTHOR_ID = 3000
ASKER_ID = 3001


def http_error(cls: type[discord.HTTPException], status: int, code: int = 0, headers: dict | None = None):
    """A real discord.py HTTP error as raised for a response with ``status`` and ``code``."""
    response = SimpleNamespace(status=status, reason="fake", headers=headers or {})
    return cls(response, {"code": code, "message": f"fake {status}"})


def probabilities(*hot: int, mass: float = 0.9) -> np.ndarray:
    """A softmax row with ``mass`` spread over the ``hot`` classes, in decreasing order."""
    row = np.full(64, (1 - mass) / (64 - len(hot)), dtype=np.float32)
    weights = np.arange(len(hot), 0, -1, dtype=np.float32)
    row[list(hot)] = mass * weights / weights.sum()
    return row


class FakeWorker:
    """``predict`` returns ``row`` (or raises ``error``); ``explain`` builds an Explanation."""

    def __init__(self, row: np.ndarray | None = None) -> None:
        self.row = probabilities(0, 4, 8) if row is None else row
        self.error: Exception | None = None
        self.explain_error: Exception | None = None
        self.predicted: list[str] = []
        self.explained: list[str] = []

    async def predict(self, text: str) -> np.ndarray:
        self.predicted.append(text)
        if self.error is not None:
            raise self.error
        return self.row

    async def explain(self, text: str) -> Explanation:
        self.explained.append(text)
        if self.explain_error is not None:
            raise self.explain_error
        first = text.split()[0]
        return Explanation(
            text=text,
            words=(WordScore(first, 0, len(first), 0.5),),
            top_emojis=((EMOJIS[0], 0.5),),
            method="occlusion",
        )


class FakeEngine(Engine):
    """The real ``Engine.top`` and ``Engine.read`` (they need no model) over the small test
    vocabulary, without loading a model."""

    def __init__(self) -> None:
        self.tokenizer = Tokenizer(small_vocabulary())
        self.max_tokens = DEFAULT_MAX_TOKENS


#: What a ``FakeStore()`` server gets for what it never chose: the cog tests' usual server.
FAKE_DEFAULTS = GuildDefaults(
    top_k=3, threshold=0.1, cooldown_s=0.0, mod_threshold=0.5, min_known=0.5, blocked=frozenset({42}), distress=0.5
)


class FakeStore:
    """The settings-store contract in memory (``tests/store/test_contract.py`` runs it as it runs
    SQLite and PostgreSQL). ``FakeStore(**settings)`` is the cog tests' server ``GUILD_ID``, with
    reactions on in ``CHANNEL_ID`` and ``settings`` chosen; ``FakeStore.empty(defaults)`` knows no
    server. ``changes`` records every write; every call raises ``error`` instead while it is set
    (a database that is down)."""

    def __init__(self, **settings: Any) -> None:
        self.defaults = FAKE_DEFAULTS
        self._chosen: dict[int, dict[str, SettingValue]] = {}
        self._channels: dict[int, set[int]] = {GUILD_ID: set(settings.pop("enabled_channels", {CHANNEL_ID}))}
        if settings:
            self._chosen[GUILD_ID] = checked_changes(settings)
        self.opted_out: set[int] = set()
        self.changes: list[tuple] = []
        self.error: Exception | None = None

    @classmethod
    def empty(cls, defaults: GuildDefaults) -> FakeStore:
        store = cls()
        store.defaults, store._channels = defaults, {}
        return store

    @property
    def settings(self) -> GuildSettings:
        """``GUILD_ID``'s settings now, without a call (what tests look at)."""
        return self._settings(GUILD_ID)

    @settings.setter
    def settings(self, settings: GuildSettings) -> None:
        """Make ``GUILD_ID``'s settings these, as if chosen one by one."""
        chosen = {name: getattr(settings, name) for name in RULES}
        self._chosen[GUILD_ID], self._channels[GUILD_ID] = chosen, set(settings.enabled_channels)

    def _settings(self, guild_id: int) -> GuildSettings:
        channels = frozenset(self._channels.get(guild_id, ()))
        return self.defaults.fill(guild_id, self._chosen.get(guild_id, {}), channels)

    def _answer(self) -> None:
        if self.error is not None:
            raise self.error

    async def get_guild(self, guild_id: int) -> GuildSettings:
        self._answer()
        check_id("guild_id", guild_id)
        return self._settings(guild_id)

    async def update_guild(self, guild_id: int, **changes: Any) -> GuildSettings:
        self._answer()
        check_id("guild_id", guild_id)
        self._chosen.setdefault(guild_id, {}).update(checked_changes(changes))
        self.changes.append(("update", guild_id, changes))
        return self._settings(guild_id)

    async def change_blocked(self, guild_id: int, *, block: Any = (), unblock: Any = ()) -> GuildSettings:
        """One step with no await inside, so as atomic as the real stores' transaction."""
        self._answer()
        check_id("guild_id", guild_id)
        added, removed = (checked_changes({"blocked": set(classes)})["blocked"] for classes in (block, unblock))
        blocked = (self._settings(guild_id).blocked | added) - removed
        self._chosen.setdefault(guild_id, {})["blocked"] = blocked
        self.changes.append(("blocked", guild_id, frozenset(added), frozenset(removed)))
        return self._settings(guild_id)

    async def set_channel_enabled(self, guild_id: int, channel_id: int, enabled: bool) -> None:
        self._answer()
        check_id("guild_id", guild_id)
        check_id("channel_id", channel_id)
        channels = self._channels.setdefault(guild_id, set())
        (channels.add if enabled else channels.discard)(channel_id)
        self.changes.append(("channel", guild_id, channel_id, enabled))

    async def is_opted_out(self, user_id: int) -> bool:
        self._answer()
        check_id("user_id", user_id)
        return user_id in self.opted_out

    async def set_opted_out(self, user_id: int, opted_out: bool) -> None:
        self._answer()
        check_id("user_id", user_id)
        (self.opted_out.add if opted_out else self.opted_out.discard)(user_id)
        self.changes.append(("opt", user_id, opted_out))

    async def close(self) -> None:
        pass


def make_bot(**store_settings: Any) -> SimpleNamespace:
    """A bot carrying what cogs reach: worker, engine, store, metrics, config, explanation
    limits (no per-user pause, so a test may ask twice), kept explanations; records dispatches."""
    metrics = Metrics()
    bot = SimpleNamespace(
        worker=FakeWorker(),
        engine=FakeEngine(),
        store=FakeStore(**store_settings),
        metrics=metrics,
        config=SimpleNamespace(moderation=SimpleNamespace(cooldown_s=300.0)),
        explanation_limits=ExplanationLimits(cooldown_s=0.0, max_per_server=3),
        kept_explanations=KeptExplanations(16_000_000, metrics),
        dispatched=[],
        tree=SimpleNamespace(),
    )
    bot.predictions = MessagePredictions(bot.worker, bot.engine)
    bot.dispatch = lambda event, *args: bot.dispatched.append((event, *args))
    return bot


def counter(metric: Any, **labels: str) -> float:
    """The current value of a Prometheus counter (labelled or not)."""
    return (metric.labels(**labels) if labels else metric)._value.get()


#: What a member may do in an ordinary channel: see it and read its history.
MEMBER_PERMISSIONS = discord.Permissions(view_channel=True, read_message_history=True, send_messages=True)


@dataclass
class FakeChannel:
    """A text channel: permissions per member id, fetchable messages, sent messages, and its
    permission ``overwrites`` as discord.py gives them (keys: ``discord.Object(id, type=discord.Role)``
    or ``type=discord.Member``; the guild's id is @everyone)."""

    id: int = CHANNEL_ID
    denied: dict[int, set[str]] = field(default_factory=dict)
    overwrites: dict[Any, discord.PermissionOverwrite] = field(default_factory=dict)
    messages: dict[int, Any] = field(default_factory=dict)
    fetch_error: Exception | None = None
    send_error: Exception | None = None
    sent: list[dict] = field(default_factory=list)

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def permissions_for(self, member: Any) -> discord.Permissions:
        permissions = discord.Permissions.all()
        for name in self.denied.get(member.id, ()):
            setattr(permissions, name, False)
        return permissions

    async def fetch_message(self, message_id: int) -> Any:
        if self.fetch_error is not None:
            raise self.fetch_error
        if message_id not in self.messages:
            raise http_error(discord.NotFound, 404, 10008)
        return self.messages[message_id]

    async def send(self, content: str, **kwargs: Any) -> None:
        if self.send_error is not None:
            raise self.send_error
        self.sent.append({"content": content, **kwargs})


@dataclass
class FakeGuild:
    """A guild whose @everyone may see and read every channel, unless overwrites say otherwise."""

    id: int = GUILD_ID
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    me: Any = field(default_factory=lambda: SimpleNamespace(id=1))
    owner_id: int = 1
    #: Role id -> server-wide permissions, besides @everyone's.
    role_permissions: dict[int, discord.Permissions] = field(default_factory=dict)

    @property
    def default_role(self) -> SimpleNamespace:
        return SimpleNamespace(id=self.id, permissions=MEMBER_PERMISSIONS)

    @property
    def roles(self) -> list[SimpleNamespace]:
        others = [SimpleNamespace(id=i, permissions=p) for i, p in self.role_permissions.items()]
        return [self.default_role, *others]

    def get_channel_or_thread(self, channel_id: int) -> FakeChannel | None:
        return self.channels.get(channel_id)

    async def fetch_channel(self, channel_id: int) -> FakeChannel:
        """What is not cached is not on Discord either, in these fakes."""
        raise http_error(discord.NotFound, 404, 10003)


@dataclass
class FakeMessage:
    """A message whose ``add_reaction`` records emojis or raises the scripted errors in turn."""

    content: str
    id: int = 5000
    author: Any = field(default_factory=lambda: SimpleNamespace(id=AUTHOR_ID, bot=False))
    guild: FakeGuild | None = field(default_factory=FakeGuild)
    channel: FakeChannel = field(default_factory=FakeChannel)
    webhook_id: int | None = None
    system: bool = False
    reaction_errors: list[Exception | None] = field(default_factory=list)
    reactions: list[str] = field(default_factory=list)

    @property
    def jump_url(self) -> str:
        guild = self.guild.id if self.guild else "@me"
        return f"https://discord.com/channels/{guild}/{self.channel.id}/{self.id}"

    def is_system(self) -> bool:
        return self.system

    async def add_reaction(self, emoji: str) -> None:
        error = self.reaction_errors.pop(0) if self.reaction_errors else None
        if error is not None:
            raise error
        self.reactions.append(emoji)


class FakeResponse:
    """``interaction.response``: one first answer (a message or a deferral)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.deferred: dict | None = None

    def is_done(self) -> bool:
        return bool(self.sent) or self.deferred is not None

    async def send_message(self, content: str, **kwargs: Any) -> None:
        assert not self.is_done(), "an interaction can be answered only once"
        self.sent.append({"content": content, **kwargs})

    async def defer(self, **kwargs: Any) -> None:
        assert not self.is_done(), "an interaction can be answered only once"
        self.deferred = kwargs


class FakeFollowup:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def send(self, content: str, **kwargs: Any) -> None:
        self.sent.append({"content": content, **kwargs})


_interaction_ids = itertools.count(900_000_000_000_000_001)


def make_interaction(
    *,
    user_id: int = ASKER_ID,
    guild: FakeGuild | None = None,
    channel: FakeChannel | None = None,
    manager: bool = False,
) -> SimpleNamespace:
    """An interaction in ``channel`` of ``guild`` by a member who may read it (Discord sends their
    permissions there); ``manager`` grants Manage Server."""
    guild = guild if guild is not None else FakeGuild()
    channel = channel or guild.channels.setdefault(CHANNEL_ID, FakeChannel())
    return SimpleNamespace(
        id=next(_interaction_ids),
        user=SimpleNamespace(id=user_id),
        guild=guild,
        guild_id=guild.id,
        channel=channel,
        channel_id=channel.id,
        permissions=discord.Permissions(MEMBER_PERMISSIONS.value, manage_guild=manager),
        response=FakeResponse(),
        followup=FakeFollowup(),
        command=None,
    )


def answers(interaction: SimpleNamespace) -> list[dict]:
    """Everything sent to the asker: the first response, then followups."""
    return interaction.response.sent + interaction.followup.sent
