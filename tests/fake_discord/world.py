"""The fake Discord's world: users, guilds, channels, messages, and their JSON payloads.

Payloads follow Discord's API v10 documents closely enough that the unmodified discord.py
client builds its usual objects from them (members with roles, text channels, permissions).
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000

#: Permission bits used by the default world (Discord's documented values).
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
ADD_REACTIONS = 1 << 6
READ_MESSAGE_HISTORY = 1 << 16
EMBED_LINKS = 1 << 14
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_MESSAGES = 1 << 13
MANAGE_GUILD = 1 << 5
ADMINISTRATOR = 1 << 3
MANAGE_THREADS = 1 << 34
ALL_PERMISSIONS = (1 << 50) - 1

EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | ADD_REACTIONS
    | READ_MESSAGE_HISTORY
    | EMBED_LINKS
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES
MODERATOR_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES | MANAGE_GUILD | MANAGE_THREADS

#: Channel types (Discord's documented values).
GUILD_TEXT, DM, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 11, 12

_MENTION = re.compile(r"<@!?(\d+)>")


class Snowflakes:
    """Unique, increasing ids that carry their creation time, as Discord's do."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last

    def skip_to(self, taken: int) -> None:
        """Never hand out ``taken`` or anything below it (it was chosen by hand)."""
        self._last = max(self._last, taken)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class User:
    id: int
    name: str
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass(frozen=True)
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }


@dataclass(frozen=True)
class Overwrite:
    """A channel's permission overwrite for a role (``type`` 0; @everyone's id is the guild's)
    or a member (``type`` 1)."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "type": self.type, "allow": str(self.allow), "deny": str(self.deny)}


ROLE_OVERWRITE, MEMBER_OVERWRITE = 0, 1


@dataclass
class Channel:
    """A text channel, a DM, or a thread (``parent_id`` set; ``members`` are its members).

    ``overwrites`` are the channel's permission overwrites (a thread has none: it takes its
    parent's)."""

    id: int
    name: str
    guild_id: int | None
    position: int = 0
    type: int = GUILD_TEXT
    recipient: User | None = None
    parent_id: int | None = None
    owner_id: int | None = None
    archived: bool = False
    members: set[int] = field(default_factory=set)
    overwrites: list[Overwrite] = field(default_factory=list)

    @property
    def is_thread(self) -> bool:
        return self.type in (PUBLIC_THREAD, PRIVATE_THREAD)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": str(self.id), "type": self.type, "last_message_id": None}
        if self.recipient is not None:
            return data | {"recipients": [self.recipient.payload()]}
        if self.is_thread:
            return data | self._thread_payload()
        return data | {
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [overwrite.payload() for overwrite in self.overwrites],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def _thread_payload(self) -> dict[str, Any]:
        return {
            "guild_id": str(self.guild_id),
            "parent_id": str(self.parent_id),
            "owner_id": str(self.owner_id),
            "name": self.name,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": len(self.members),
            "flags": 0,
            "thread_metadata": {
                "archived": self.archived,
                "auto_archive_duration": 1440,
                "archive_timestamp": iso_now(),
                "locked": False,
                "invitable": True,
            },
        }

    def thread_member_payload(self, user_id: int) -> dict[str, Any]:
        return {"id": str(self.id), "user_id": str(user_id), "join_timestamp": iso_now(), "flags": 0}


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: list[Role] = field(default_factory=list)
    channels: list[Channel] = field(default_factory=list)
    threads: list[Channel] = field(default_factory=list)
    #: user id -> (user, role ids besides @everyone)
    members: dict[int, tuple[User, tuple[int, ...]]] = field(default_factory=dict)

    def role_ids(self, user_id: int) -> tuple[int, ...]:
        return self.members[user_id][1]

    def permissions(self, user_id: int, channel: Channel | None = None) -> int:
        """The member's permissions: guild-wide, or in ``channel`` with its overwrites (a
        thread's are its parent's), computed as Discord documents it."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        held = set(self.role_ids(user_id)) | {self.id}
        value = 0
        for role in self.roles:
            if role.id in held:
                value |= role.permissions
        if value & ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is not None and channel.parent_id is not None:
            channel = next((c for c in self.channels if c.id == channel.parent_id), None)
        if channel is None:
            return value
        overwrites = channel.overwrites
        for overwrite in overwrites:
            if overwrite.type == ROLE_OVERWRITE and overwrite.id == self.id:
                value = (value & ~overwrite.deny) | overwrite.allow
        deny = allow = 0
        for overwrite in overwrites:
            if overwrite.type == ROLE_OVERWRITE and overwrite.id != self.id and overwrite.id in held:
                deny, allow = deny | overwrite.deny, allow | overwrite.allow
        value = (value & ~deny) | allow
        for overwrite in overwrites:
            if overwrite.type == MEMBER_OVERWRITE and overwrite.id == user_id:
                value = (value & ~overwrite.deny) | overwrite.allow
        return value if value & VIEW_CHANNEL else 0

    def member_payload(self, user_id: int, *, with_user: bool = True) -> dict[str, Any]:
        user, roles = self.members[user_id]
        data: dict[str, Any] = {
            "roles": [str(role) for role in roles],
            "nick": None,
            "avatar": None,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = user.payload()
        return data

    def create_payload(self) -> dict[str, Any]:
        """The ``GUILD_CREATE`` body: complete, so discord.py needs no member chunking."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [role.payload() for role in self.roles],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [self.member_payload(user_id) for user_id in self.members],
            "channels": [channel.payload() for channel in self.channels],
            # Discord sends the active threads the bot can see; archived ones only over REST.
            "threads": [thread.payload() for thread in self.threads if not thread.archived],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class Message:
    """A message in the fake, with every reaction the bot placed on it, in order."""

    id: int
    channel_id: int
    guild_id: int | None
    author: User
    content: str
    embeds: list[dict[str, Any]] = field(default_factory=list)
    flags: int = 0
    #: The JSON body the bot sent to create or last edit it (None for users' messages).
    body: dict[str, Any] | None = None
    reactions: list[str] = field(default_factory=list)
    #: ``time.monotonic()`` when each reaction landed (for latency figures).
    reaction_times: list[float] = field(default_factory=list)
    #: ``time.monotonic()`` when the message was created in the fake.
    created_at: float = field(default_factory=time.monotonic)
    webhook_id: int | None = None
    #: Its components (action rows of select menus and buttons), as the bot last sent them.
    components: list[dict[str, Any]] = field(default_factory=list)
    #: An ephemeral message's only reader (the user of the interaction it answered), else None.
    visible_to: int | None = None

    def payload(self, world: World, *, content_visible: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "channel_id": str(self.channel_id),
            "author": self.author.payload(),
            "content": self.content if content_visible else "",
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [world.users[uid].payload() for uid in mentioned_ids(self.content) if uid in world.users],
            "mention_roles": [],
            "attachments": [],
            "embeds": self.embeds if content_visible else [],
            "reactions": [
                {"emoji": {"id": None, "name": emoji}, "count": 1, "me": True}
                for emoji in dict.fromkeys(self.reactions)
            ],
            "pinned": False,
            "type": 0,
            "flags": self.flags,
            "components": self.components,
        }
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
            guild = world.guilds[self.guild_id]
            if self.author.id in guild.members:
                data["member"] = guild.member_payload(self.author.id, with_user=False)
        return data


def mentioned_ids(content: str) -> list[int]:
    return [int(match) for match in dict.fromkeys(_MENTION.findall(content))]


class World:
    """Everything the fake knows: users, guilds, channels, messages; ids from one source."""

    def __init__(self) -> None:
        self.ids = Snowflakes()
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}
        self._positions = itertools.count()

    def add_user(self, name: str, *, bot: bool = False) -> User:
        user = User(self.ids.next(), name, bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, owner: User, guild_id: int | None = None) -> Guild:
        guild_id = guild_id or self.ids.next()
        everyone = Role(guild_id, "@everyone", EVERYONE_PERMISSIONS)
        guild = Guild(guild_id, name, owner.id, roles=[everyone])
        self.guilds[guild_id] = guild
        self.add_member(guild, owner)
        return guild

    def add_role(self, guild: Guild, name: str, permissions: int) -> Role:
        role = Role(self.ids.next(), name, permissions, position=len(guild.roles))
        guild.roles.append(role)
        return role

    def add_member(self, guild: Guild, user: User, roles: tuple[Role, ...] = ()) -> None:
        guild.members[user.id] = (user, tuple(role.id for role in roles))

    def add_channel(self, guild: Guild, name: str) -> Channel:
        channel = Channel(self.ids.next(), name, guild.id, position=next(self._positions))
        guild.channels.append(channel)
        self.channels[channel.id] = channel
        return channel

    def add_thread(
        self, parent: Channel, name: str, owner: User, *, private: bool, archived: bool, members: tuple[User, ...]
    ) -> Channel:
        thread = Channel(
            self.ids.next(),
            name,
            parent.guild_id,
            type=PRIVATE_THREAD if private else PUBLIC_THREAD,
            parent_id=parent.id,
            owner_id=owner.id,
            archived=archived,
            members={user.id for user in members},
        )
        self.guilds[parent.guild_id].threads.append(thread)
        self.channels[thread.id] = thread
        return thread

    def dm_channel(self, user: User) -> Channel:
        """The DM channel with ``user``, created on first use (``POST /users/@me/channels``)."""
        for channel in self.channels.values():
            if channel.recipient == user:
                return channel
        channel = Channel(self.ids.next(), f"dm-{user.name}", None, type=1, recipient=user)
        self.channels[channel.id] = channel
        return channel

    def add_message(self, channel_id: int, author: User, content: str, **extra: Any) -> Message:
        channel = self.channels[channel_id]
        message = Message(self.ids.next(), channel_id, channel.guild_id, author, content, **extra)
        self.messages[message.id] = message
        return message
