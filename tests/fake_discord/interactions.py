"""Application commands as the bot registered them, and interactions built from them.

The fake keeps what the bot PUT on ``/applications/{id}/commands``; a test names a command
path (``"whymoji topk"``) and plain option values, and the builder turns them into the
``INTERACTION_CREATE`` body Discord would send, typed by the registered option definitions.
That way a test fails loudly when it uses a command or option the bot never registered.

Component interactions (type 3: a pick in a select menu on a message the bot sent) are built
from the components the message carries (``select_data``): a test picks an option by value,
and one the message does not offer, or an ephemeral message that is not the picker's, fails
loudly (``ComponentNotFound``), as Discord would never send such an interaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from .world import Channel, Guild, Message, User, World

CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3
#: Interaction types (Discord's documented values).
APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3
#: Component types.
ACTION_ROW, BUTTON, STRING_SELECT = 1, 2, 3
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
USER_OPTION, CHANNEL_OPTION, ROLE_OPTION = 6, 7, 8

#: Interaction callback types (Discord's documented values).
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
EPHEMERAL = 1 << 6


class CommandNotRegistered(LookupError):
    """The test used a command or option that the bot never registered."""


class ComponentNotFound(LookupError):
    """The test picked in a menu, or an option, that the message does not have (or cannot see)."""


@dataclass
class InteractionRecord:
    """One interaction sent to the bot and everything the bot answered to it, in order.

    ``responses`` holds ``(kind, body)`` with kind ``callback``, ``followup``, ``edit_original``,
    ``edit_followup`` or ``delete``; ``original`` is the response message as it stands (for a
    component interaction answered by updating its message, that message). ``source`` is the
    message whose component was used (component interactions only).
    """

    id: int
    token: str
    channel_id: int
    user_id: int = 0
    type: int = APPLICATION_COMMAND
    source: Message | None = None
    responses: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return any(kind == "callback" for kind, _ in self.responses)

    @property
    def answered(self) -> bool:
        """True once a message with content or embeds is visible (not just "thinking...")."""
        visible = [self.original, *self.followups]
        return any(m is not None and (m.content or m.embeds) for m in visible)

    @property
    def callback_type(self) -> int | None:
        return next((body.get("type") for kind, body in self.responses if kind == "callback"), None)

    def bodies(self) -> list[dict[str, Any]]:
        """Every message body the bot sent (callback data, edits, followups), in order."""
        out = []
        for kind, body in self.responses:
            data = body.get("data") if kind == "callback" else body
            if data:
                out.append(data)
        return out


class CommandRegistry:
    """The bot's registered application commands, global and per guild."""

    def __init__(self, world: World, application_id: int) -> None:
        self.world = world
        self.application_id = application_id
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}

    def put(self, guild_id: int | None, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace a scope's commands (bulk overwrite), giving each an id as Discord does."""
        existing = {(c["name"], c.get("type", 1)): c["id"] for c in self._scope(guild_id)}
        stored = []
        for command in commands:
            key = (command["name"], command.get("type", CHAT_INPUT))
            stored.append(
                {
                    "type": CHAT_INPUT,
                    "description": "",
                    "options": [],
                    **command,
                    "id": existing.get(key) or str(self.world.ids.next()),
                    "application_id": str(self.application_id),
                    "version": str(self.world.ids.next()),
                    **({"guild_id": str(guild_id)} if guild_id is not None else {}),
                }
            )
        if guild_id is None:
            self.global_commands = stored
        else:
            self.guild_commands[guild_id] = stored
        return stored

    def _scope(self, guild_id: int | None) -> list[dict[str, Any]]:
        return self.global_commands if guild_id is None else self.guild_commands.get(guild_id, [])

    def find(self, guild_id: int | None, name: str, type_: int) -> dict[str, Any]:
        for scope in (guild_id, None) if guild_id is not None else (None,):
            for command in self._scope(scope):
                if command["name"] == name and command.get("type", CHAT_INPUT) == type_:
                    return command
        known = [c["name"] for c in self.global_commands + self.guild_commands.get(guild_id or 0, [])]
        raise CommandNotRegistered(f"no registered command {name!r} of type {type_}; registered: {known}")


def interaction_payload(
    *,
    world: World,
    application_id: int,
    guild: Guild,
    channel: Channel,
    user: User,
    data: dict[str, Any],
    app_permissions: int,
    source: Message | None = None,
) -> tuple[dict[str, Any], InteractionRecord]:
    """The ``INTERACTION_CREATE`` body for an application command (or, with ``source``, for a
    component of that message), and its record."""
    kind = APPLICATION_COMMAND if source is None else MESSAGE_COMPONENT
    record = InteractionRecord(world.ids.next(), secrets.token_urlsafe(24), channel.id, user.id, kind, source)
    # Discord sends the member's and the bot's permissions in the channel, overwrites included.
    member = guild.member_payload(user.id) | {"permissions": str(guild.permissions(user.id, channel))}
    payload = {
        "id": str(record.id),
        "application_id": str(application_id),
        "type": kind,
        "data": data,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "channel_id": str(channel.id),
        "channel": channel.payload(),
        "member": member,
        "token": record.token,
        "version": 1,
        "app_permissions": str(app_permissions),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": 10 * 1024 * 1024,
    }
    if source is not None:
        payload["message"] = source.payload(world)
    return payload, record


def selects(message: Message) -> dict[str, dict[str, Any]]:
    """The string select menus on ``message``, by custom_id."""
    return {
        component["custom_id"]: component
        for row in message.components
        for component in row.get("components", [])
        if component.get("type") == STRING_SELECT
    }


def select_data(message: Message, user: User, custom_id: str, value: str) -> dict[str, Any]:
    """``data`` of a pick of ``value`` in the menu ``custom_id`` of ``message`` by ``user``."""
    if message.visible_to is not None and message.visible_to != user.id:
        raise ComponentNotFound(f"message {message.id} is ephemeral: only user {message.visible_to} sees it")
    menus = selects(message)
    if custom_id not in menus:
        raise ComponentNotFound(f"message {message.id} has no select menu {custom_id!r}; it has {list(menus)}")
    values = [option["value"] for option in menus[custom_id].get("options", [])]
    if value not in values:
        raise ComponentNotFound(f"menu {custom_id!r} has no option {value!r}; it has {values}")
    return {"custom_id": custom_id, "component_type": STRING_SELECT, "values": [value]}


def chat_input_data(
    world: World, guild: Guild, command: dict[str, Any], path: list[str], options: dict[str, Any]
) -> dict[str, Any]:
    """``data`` of a slash command: nest subcommand groups/subcommands, type every option."""
    resolved: dict[str, dict[str, Any]] = {}
    definitions = command.get("options", [])
    nesting: list[dict[str, Any]] = []
    for name in path:
        definition = _option(definitions, name, command["name"])
        if definition["type"] not in (SUB_COMMAND, SUB_COMMAND_GROUP):
            raise CommandNotRegistered(f"{name!r} of {command['name']!r} is not a subcommand")
        nesting.append({"type": definition["type"], "name": name})
        definitions = definition.get("options", [])
    leaves = [_typed(world, guild, _option(definitions, k, command["name"]), v, resolved) for k, v in options.items()]
    for definition in definitions:
        if definition.get("required") and definition["name"] not in options:
            raise CommandNotRegistered(f"required option {definition['name']!r} missing for {command['name']!r}")
    for level in reversed(nesting):
        level["options"] = leaves
        leaves = [level]
    data = {"id": command["id"], "name": command["name"], "type": CHAT_INPUT, "options": leaves}
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    if resolved:
        data["resolved"] = resolved
    return data


def message_command_data(world: World, command: dict[str, Any], target: Message) -> dict[str, Any]:
    """``data`` of a message context-menu command aimed at ``target``."""
    data = {
        "id": command["id"],
        "name": command["name"],
        "type": MESSAGE_COMMAND,
        "target_id": str(target.id),
        "resolved": {"messages": {str(target.id): target.payload(world)}},
    }
    if "guild_id" in command:
        data["guild_id"] = command["guild_id"]
    return data


def _option(definitions: list[dict[str, Any]], name: str, command: str) -> dict[str, Any]:
    for definition in definitions:
        if definition["name"] == name:
            return definition
    known = [d["name"] for d in definitions]
    raise CommandNotRegistered(f"{command!r} has no option {name!r}; it has {known}")


def _typed(
    world: World, guild: Guild, definition: dict[str, Any], value: Any, resolved: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    kind = definition["type"]
    if kind == USER_OPTION:
        user = value if isinstance(value, User) else world.users[int(value)]
        resolved.setdefault("users", {})[str(user.id)] = user.payload()
        if user.id in guild.members:
            member = guild.member_payload(user.id, with_user=False) | {"permissions": str(guild.permissions(user.id))}
            resolved.setdefault("members", {})[str(user.id)] = member
        value = str(user.id)
    elif kind == CHANNEL_OPTION:
        channel = value if isinstance(value, Channel) else world.channels[int(value)]
        resolved.setdefault("channels", {})[str(channel.id)] = channel.payload() | {
            "permissions": str(guild.permissions(guild.owner_id))
        }
        value = str(channel.id)
    elif kind == ROLE_OPTION:
        role = next(r for r in guild.roles if r.id == getattr(value, "id", value))
        resolved.setdefault("roles", {})[str(role.id)] = role.payload()
        value = str(role.id)
    return {"type": kind, "name": definition["name"], "value": value}
