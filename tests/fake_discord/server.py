"""FakeDiscord: REST and gateway on 127.0.0.1, a small world, recording and test helpers.

Use it as ``async with FakeDiscord() as fake:`` and point the bot at ``fake.api_base_url`` and
``fake.gateway_url``. The default world is one guild with ``#general`` and ``#moderators``,
the bot (with a role that may react, post and read history), its owner, ``alice`` and a
moderator. Everything the bot does is recorded: reactions on ``Message.reactions`` in order,
posted messages in ``world.messages``, interaction answers on ``InteractionRecord``\\ s,
every REST call in ``rest_log``. ``wait_for(predicate)`` waits, bounded, until the records
satisfy a predicate. The server also stops itself after ``lifetime_s`` in case a test forgets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .gateway import Gateway, Session
from .interactions import (
    CHAT_INPUT,
    MESSAGE_COMMAND,
    CommandRegistry,
    InteractionRecord,
    chat_input_data,
    interaction_payload,
    message_command_data,
    select_data,
    selects,
)
from .rest import FixedWindow, RestApi, RestCall
from .world import (
    BOT_PERMISSIONS,
    MEMBER_OVERWRITE,
    MODERATOR_PERMISSIONS,
    ROLE_OVERWRITE,
    VIEW_CHANNEL,
    Channel,
    Guild,
    Message,
    Overwrite,
    Role,
    User,
    World,
    mentioned_ids,
)

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
GATEWAY_PATH = "/gateway-ws"
RESUME_PATH = "/gateway-ws/resume"


class FakeDiscord:
    """A fake Discord for end-to-end tests of the unmodified discord.py client."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        shard_count: int = 1,
        heartbeat_interval_ms: int = 41_250,
        reaction_limit: tuple[int, float] = (50, 1.0),
        message_limit: tuple[int, float] = (50, 1.0),
        lifetime_s: float = 300.0,
    ) -> None:
        self.token = token
        self.shard_count = shard_count
        self.lifetime_s = lifetime_s
        self.world = world = World()
        self.owner = world.add_user("owner")
        self.bot_user = world.add_user("whymoji", bot=True)
        self.application_id = self.bot_user.id
        self.guild = self.add_guild("whymoji test")
        self.general = world.add_channel(self.guild, "general")
        self.mod_channel = world.add_channel(self.guild, "moderators")
        self.alice = self.add_user("alice")
        self.moderator = self.add_user("moderator", moderator=True)

        self.commands = CommandRegistry(world, self.application_id)
        self.interactions: dict[str, InteractionRecord] = {}
        self.rest_log: list[RestCall] = []
        self.unknown_routes: list[str] = []
        #: Message bodies refused for breaking Discord's limits (``rest.body_problem``).
        self.invalid_bodies: list[str] = []
        self.dropped_events: list[str] = []
        self.forbidden_channels: set[int] = set()
        self.pending_rate_limits = 0
        self.rate_limit_retry_after = 0.05
        self.reaction_bucket = FixedWindow("fake-reactions", *reaction_limit)
        self.message_bucket = FixedWindow("fake-messages", *message_limit)

        self.gateway = Gateway(
            token=token,
            shard_count=shard_count,
            heartbeat_interval_ms=heartbeat_interval_ms,
            ready_payload=self._ready_payload,
            guild_payloads=lambda session: [g.create_payload() for g in self._guilds_of(session.shard[0])],
            members_chunk=self._members_chunk,
            on_change=self.changed,
        )
        self._rest = RestApi(self)
        self._change = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self.port = 0

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._rest.middleware])
        app.router.add_get(GATEWAY_PATH, self.gateway.handle)
        app.router.add_get(RESUME_PATH, self.gateway.handle)
        app.add_routes(self._rest.routes(API_PREFIX))
        # No access log: Discord's own request log is not the bot's (and names interaction tokens).
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._watchdog = asyncio.create_task(self._stop_later())
        log.info("fake discord listening on 127.0.0.1:%s", self.port)
        return self

    async def stop(self) -> None:
        if self._watchdog is not None and self._watchdog is not asyncio.current_task():
            self._watchdog.cancel()
        if self._runner is not None:
            await self.gateway.close()
            await self._runner.cleanup()
            self._runner = None

    async def _stop_later(self) -> None:
        await asyncio.sleep(self.lifetime_s)
        log.error("fake discord: lifetime of %ss is over, stopping", self.lifetime_s)
        await self.stop()

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{GATEWAY_PATH}"

    # -- the world ----------------------------------------------------------------------------

    def add_guild(self, name: str, *, shard: int | None = None) -> Guild:
        """A guild owned by ``owner`` with the bot in it (role ``whymoji``) and a ``moderators``
        role; ``shard`` picks the shard it belongs to. Add guilds before the bot connects."""
        guild_id = self.world.ids.next()
        if shard is not None:
            # A guild's shard is (id >> 22) % shard_count: move the id's timestamp a few ms on.
            guild_id += ((shard - self.shard_of(guild_id)) % self.shard_count) << 22
            self.world.ids.skip_to(guild_id)
        guild = self.world.add_guild(name, self.owner, guild_id)
        bot_role = self.world.add_role(guild, "whymoji", BOT_PERMISSIONS)
        self.world.add_role(guild, "moderators", MODERATOR_PERMISSIONS)
        self.world.add_member(guild, self.bot_user, (bot_role,))
        return guild

    def add_user(
        self, name: str, *, moderator: bool = False, guild: Guild | None = None, roles: tuple[Role, ...] = ()
    ) -> User:
        """A new member of ``guild`` (default: the test guild), optionally a moderator, with ``roles``."""
        user = self.world.add_user(name)
        self.join(user, guild or self.guild, moderator=moderator, roles=roles)
        return user

    def join(self, user: User, guild: Guild, *, moderator: bool = False, roles: tuple[Role, ...] = ()) -> None:
        """Make ``user`` a member of ``guild``, with its ``moderators`` role if asked, and ``roles``."""
        roles += tuple(role for role in guild.roles if moderator and role.name == "moderators")
        self.world.add_member(guild, user, roles)

    def add_role(self, name: str, permissions: int = 0, guild: Guild | None = None) -> Role:
        """A new role (no guild-wide permissions unless given); add roles before the bot connects."""
        return self.world.add_role(guild or self.guild, name, permissions)

    def add_channel(self, name: str, guild: Guild | None = None, *, overwrites: tuple[Overwrite, ...] = ()) -> Channel:
        """A new text channel with permission ``overwrites`` (see ``hidden_from_everyone``); add
        channels before the bot connects (GUILD_CREATE carries them)."""
        channel = self.world.add_channel(guild or self.guild, name)
        channel.overwrites = list(overwrites)
        return channel

    def hidden_from_everyone(self, *allowed: Role | User, guild: Guild | None = None) -> tuple[Overwrite, ...]:
        """Overwrites that hide a channel from @everyone and open it to ``allowed`` roles or
        members (and to the bot), as a server makes a private channel."""
        guild = guild or self.guild
        shown = (*allowed, self.bot_user)
        return (
            Overwrite(guild.id, ROLE_OVERWRITE, deny=VIEW_CHANNEL),
            *(
                Overwrite(item.id, ROLE_OVERWRITE if isinstance(item, Role) else MEMBER_OVERWRITE, allow=VIEW_CHANNEL)
                for item in shown
            ),
        )

    def add_thread(
        self,
        parent: Channel,
        name: str,
        *,
        private: bool = False,
        archived: bool = False,
        members: tuple[User, ...] = (),
    ) -> Channel:
        """A thread of ``parent`` started by its first member (or the owner); the bot is a member
        too. Archived threads are not in GUILD_CREATE: the bot learns of them over REST."""
        owner = members[0] if members else self.owner
        return self.world.add_thread(
            parent, name, owner, private=private, archived=archived, members=(*members, self.bot_user)
        )

    def shard_of(self, guild_id: int) -> int:
        return (guild_id >> 22) % self.shard_count

    def _guilds_of(self, shard_id: int) -> list[Guild]:
        return [g for g in self.world.guilds.values() if self.shard_of(g.id) == shard_id]

    def _ready_payload(self, session: Session) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in self._guilds_of(session.shard[0])],
            "session_id": session.id,
            "resume_gateway_url": f"ws://127.0.0.1:{self.port}{RESUME_PATH}",
            "shard": list(session.shard),
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "auth": {},
            "geo_ordered_rtc_regions": [],
            "guild_join_requests": [],
            "user_settings": {},
        }

    def _members_chunk(self, guild_id: int) -> dict[str, Any]:
        guild = self.world.guilds[guild_id]
        members = [guild.member_payload(user_id) for user_id in guild.members]
        return {"guild_id": str(guild_id), "members": members, "chunk_index": 0, "chunk_count": 1}

    # -- driving the bot ----------------------------------------------------------------------

    async def send_message(self, channel: Channel | int, author: User, content: str) -> Message:
        """Post ``content`` as ``author`` and dispatch MESSAGE_CREATE to the channel's shard.

        Content is blanked, as Discord does, for a bot that did not ask for the message
        content intent, unless the message mentions it.
        """
        channel_id = getattr(channel, "id", channel)
        message = self.world.add_message(channel_id, author, content)
        guild_id = message.guild_id
        session = self._session(guild_id, "MESSAGE_CREATE")
        if session is not None:
            visible = session.wants_content or guild_id is None or self.bot_user.id in mentioned_ids(content)
            await session.dispatch("MESSAGE_CREATE", message.payload(self.world, content_visible=visible))
        self.changed()
        return message

    async def slash(self, user: User, channel: Channel, command: str, /, **options: Any) -> InteractionRecord:
        """Run a registered slash command, e.g. ``slash(moderator, general, "whymoji topk", count=2)``.

        The first word is the command, further words its subcommand group/subcommand.
        """
        name, *path = command.split()
        guild = self.world.guilds[channel.guild_id]
        definition = self.commands.find(guild.id, name, CHAT_INPUT)
        data = chat_input_data(self.world, guild, definition, path, options)
        return await self._interact(user, channel, data)

    async def message_command(self, user: User, target: Message, name: str) -> InteractionRecord:
        """Run the registered message context-menu command ``name`` on ``target``."""
        channel = self.world.channels[target.channel_id]
        definition = self.commands.find(channel.guild_id, name, MESSAGE_COMMAND)
        return await self._interact(user, channel, message_command_data(self.world, definition, target))

    async def pick(self, user: User, message: Message, custom_id: str, value: str) -> InteractionRecord:
        """Pick the option ``value`` in the select menu ``custom_id`` of ``message`` as ``user``
        (a component interaction). Raises ``ComponentNotFound`` for anything Discord would not
        send: a menu or option the message does not have, an ephemeral message of someone else."""
        data = select_data(message, user, custom_id, value)
        return await self._interact(user, self.world.channels[message.channel_id], data, source=message)

    def selects(self, message: Message) -> dict[str, dict[str, Any]]:
        """The select menus on ``message`` (as the bot last sent them), by custom_id."""
        return selects(message)

    async def _interact(
        self, user: User, channel: Channel, data: dict[str, Any], source: Message | None = None
    ) -> InteractionRecord:
        guild = self.world.guilds[channel.guild_id]
        payload, record = interaction_payload(
            world=self.world,
            application_id=self.application_id,
            guild=guild,
            channel=channel,
            user=user,
            data=data,
            app_permissions=guild.permissions(self.bot_user.id, channel),
            source=source,
        )
        self.interactions[record.token] = record
        session = self._session(guild.id, "INTERACTION_CREATE")
        if session is not None:
            await session.dispatch("INTERACTION_CREATE", payload)
        return record

    def _session(self, guild_id: int | None, event: str) -> Session | None:
        shard_id = 0 if guild_id is None else self.shard_of(guild_id)
        session = self.gateway.sessions.get(shard_id)
        if session is None:
            log.warning("fake discord: shard %s has no session, %s dropped", shard_id, event)
            self.dropped_events.append(event)
        return session

    async def reconnect(self, shard_id: int = 0) -> None:
        """Ask the shard to reconnect (op 7); events until it resumes are replayed then."""
        await self.gateway.reconnect(shard_id)

    async def invalidate_session(self, shard_id: int = 0, *, resumable: bool = False) -> None:
        """Send op 9; a non-resumable invalidation makes the client identify afresh."""
        await self.gateway.invalidate(shard_id, resumable=resumable)

    def forbid_channel(self, channel: Channel) -> None:
        """Answer 403 Missing Permissions to every REST call about ``channel``."""
        self.forbidden_channels.add(channel.id)

    def rate_limit_reactions(self, count: int, retry_after: float = 0.05) -> None:
        """Answer the next ``count`` reaction PUTs with 429 and ``retry_after`` seconds."""
        self.pending_rate_limits += count
        self.rate_limit_retry_after = retry_after

    # -- observing ----------------------------------------------------------------------------

    def changed(self) -> None:
        """Wake every ``wait_for``; called whenever the records change."""
        self._change.set()
        self._change = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change); return its value.

        Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds, so no test hangs.
        """
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"fake discord: timed out after {timeout}s waiting for {what or predicate}")
            change = self._change
            try:
                await asyncio.wait_for(change.wait(), min(remaining, 0.25))
            except TimeoutError:
                pass
        return result

    async def wait_until_connected(self, timeout: float = 15.0) -> None:
        """Wait until every shard has a live session."""
        await self.wait_for(
            lambda: all(
                s in self.gateway.sessions and self.gateway.sessions[s].connection is not None
                for s in range(self.shard_count)
            ),
            timeout,
            "every shard to connect",
        )

    def bot_messages(self, channel: Channel | int) -> list[Message]:
        """Messages the bot created in ``channel`` (posts and interaction answers), oldest first."""
        channel_id = getattr(channel, "id", channel)
        return [
            m for m in self.world.messages.values() if m.channel_id == channel_id and m.author.id == self.bot_user.id
        ]

    def calls(self, method: str, path_part: str) -> list[RestCall]:
        """REST calls with ``method`` whose path contains ``path_part``."""
        return [c for c in self.rest_log if c.method == method and path_part in c.path]
