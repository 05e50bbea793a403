"""The fake's REST API: the routes discord.py calls for whymoji, answered like Discord.

Anything else is logged as an error, recorded in ``FakeDiscord.unknown_routes`` and answered
404, so a gap in the fake shows up in the test that hit it instead of as a silent success.
Errors carry Discord's JSON error codes; 429s carry the headers discord.py relies on
(notably ``Via``: without it discord.py takes a 429 for a Cloudflare ban and gives up).
Message bodies are checked against Discord's limits (``body_problem``: content, components,
select menus) and refused with 400 Invalid Form Body, recorded in ``FakeDiscord.invalid_bodies``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .interactions import (
    ACTION_ROW,
    BUTTON,
    CHANNEL_MESSAGE,
    DEFERRED_CHANNEL_MESSAGE,
    DEFERRED_UPDATE,
    EPHEMERAL,
    STRING_SELECT,
    UPDATE_MESSAGE,
    InteractionRecord,
)
from .world import Message

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

LOADING = 1 << 7  # the "is thinking..." message flag

#: Discord JSON error codes used here.
UNKNOWN_CHANNEL, UNKNOWN_MEMBER, UNKNOWN_MESSAGE, UNKNOWN_INTERACTION = 10003, 10007, 10008, 10062
MISSING_PERMISSIONS, ALREADY_ACKNOWLEDGED, INVALID_FORM_BODY = 50013, 40060, 50035

#: Discord's limits on a message body.
MAX_CONTENT, MAX_ROWS, MAX_ROW_WIDTH, MAX_OPTIONS, MAX_CHARS, MAX_PLACEHOLDER = 2000, 5, 5, 25, 100, 150


def body_problem(body: dict[str, Any]) -> str | None:
    """What Discord would refuse in a message body (content and components), or None."""
    content = body.get("content") or ""
    if len(content) > MAX_CONTENT:
        return f"content has {len(content)} characters, more than {MAX_CONTENT}"
    rows = body.get("components") or []
    if len(rows) > MAX_ROWS:
        return f"{len(rows)} action rows, more than {MAX_ROWS}"
    custom_ids: list[str] = []
    for row in rows:
        if row.get("type") != ACTION_ROW:
            return f"a top-level component of type {row.get('type')}, not an action row"
        items = row.get("components") or []
        width = sum(MAX_ROW_WIDTH if item.get("type") == STRING_SELECT else 1 for item in items)
        if not items or width > MAX_ROW_WIDTH:
            return f"an action row of {len(items)} components (a select menu fills a row alone)"
        for item in items:
            if item.get("type") not in (BUTTON, STRING_SELECT):
                return f"a component of type {item.get('type')}"
            custom_id = item.get("custom_id") or ""
            if not 1 <= len(custom_id) <= MAX_CHARS:
                return f"custom_id of {len(custom_id)} characters"
            custom_ids.append(custom_id)
            if item["type"] == STRING_SELECT and (problem := _select_problem(item)):
                return problem
    if len(set(custom_ids)) != len(custom_ids):
        return "two components with one custom_id"
    return None


def _select_problem(select: dict[str, Any]) -> str | None:
    options = select.get("options") or []
    if not 1 <= len(options) <= MAX_OPTIONS:
        return f"a select menu with {len(options)} options"
    if len(select.get("placeholder") or "") > MAX_PLACEHOLDER:
        return "a placeholder over 150 characters"
    for option in options:
        for key in ("label", "value"):
            if not 1 <= len(option.get(key) or "") <= MAX_CHARS:
                return f"an option {key} of {len(option.get(key) or '')} characters"
        if len(option.get("description") or "") > MAX_CHARS:
            return "an option description over 100 characters"
    if len({option["value"] for option in options}) != len(options):
        return "two options with one value"
    if sum(bool(option.get("default")) for option in options) > (select.get("max_values") or 1):
        return "more default options than max_values"
    return None


@dataclass(frozen=True)
class RestCall:
    method: str
    path: str
    status: int


class FixedWindow:
    """A per-channel bucket like Discord's reaction bucket: ``limit`` requests per ``window_s``."""

    def __init__(self, name: str, limit: int, window_s: float) -> None:
        self.name, self.limit, self.window_s = name, limit, window_s
        self._windows: dict[int, tuple[float, int]] = {}

    def take(self, key: int) -> tuple[bool, dict[str, str]]:
        """Count one request; return whether it fits and the ``X-RateLimit-*`` headers."""
        now = time.time()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= self.window_s:
            start, used = now, 0
        allowed = used < self.limit
        used += allowed
        self._windows[key] = (start, used)
        reset_after = max(start + self.window_s - now, 0.001)
        return allowed, {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - used),
            "X-RateLimit-Reset": f"{now + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.name,
        }


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response typed exactly ``application/json``: discord.py compares the header
    verbatim, so aiohttp's ``application/json; charset=utf-8`` would reach it as plain text."""
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json", **(headers or {})}
    )


def error(status: int, message: str, code: int = 0, headers: dict[str, str] | None = None) -> web.Response:
    return json_reply({"message": message, "code": code}, status=status, headers=headers)


def too_many_requests(retry_after: float, headers: dict[str, str], scope: str = "user") -> web.Response:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    headers = headers | {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Scope": scope,
        "Via": "1.1 google",
    }
    return json_reply(body, status=429, headers=headers)


async def read_body(request: web.Request) -> dict[str, Any]:
    """A JSON body, or the ``payload_json`` part of a multipart one (messages with files)."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        return json.loads(form.get("payload_json", "{}"))
    if not request.can_read_body:
        return {}
    return await request.json()


class RestApi:
    """Route handlers over the fake's state; ``routes()`` lists them for the aiohttp app."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.world = fake.world

    def routes(self, prefix: str) -> list[web.RouteDef]:
        p = prefix
        return [
            web.get(f"{p}/users/@me", self.me),
            web.post(f"{p}/users/@me/channels", self.open_dm),
            web.get(f"{p}/oauth2/applications/@me", self.application),
            web.get(f"{p}/gateway", self.gateway),
            web.get(f"{p}/gateway/bot", self.gateway_bot),
            web.put(f"{p}/applications/{{app}}/commands", self.put_commands),
            web.get(f"{p}/applications/{{app}}/commands", self.get_commands),
            web.put(f"{p}/applications/{{app}}/guilds/{{guild}}/commands", self.put_commands),
            web.get(f"{p}/applications/{{app}}/guilds/{{guild}}/commands", self.get_commands),
            web.get(f"{p}/channels/{{channel}}", self.get_channel),
            web.get(f"{p}/channels/{{channel}}/thread-members/{{user}}", self.get_thread_member),
            web.post(f"{p}/channels/{{channel}}/messages", self.create_message),
            web.get(f"{p}/channels/{{channel}}/messages/{{message}}", self.get_message),
            web.put(f"{p}/channels/{{channel}}/messages/{{message}}/reactions/{{emoji}}/@me", self.add_reaction),
            web.delete(f"{p}/channels/{{channel}}/messages/{{message}}/reactions/{{emoji}}/@me", self.remove_reaction),
            web.get(f"{p}/guilds/{{guild}}", self.get_guild),
            web.get(f"{p}/guilds/{{guild}}/channels", self.get_guild_channels),
            web.get(f"{p}/guilds/{{guild}}/members/{{user}}", self.get_member),
            web.post(f"{p}/interactions/{{id}}/{{token}}/callback", self.interaction_callback),
            web.post(f"{p}/webhooks/{{app}}/{{token}}", self.followup),
            web.get(f"{p}/webhooks/{{app}}/{{token}}/messages/{{message}}", self.get_webhook_message),
            web.patch(f"{p}/webhooks/{{app}}/{{token}}/messages/{{message}}", self.edit_webhook_message),
            web.delete(f"{p}/webhooks/{{app}}/{{token}}/messages/{{message}}", self.delete_webhook_message),
            web.route("*", f"{p}/{{tail:.*}}", self.unknown),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Check the bot token (webhook-style routes carry theirs in the URL) and log the call."""
        webhook_style = "/interactions/" in request.path or "/webhooks/" in request.path
        gateway = request.path.startswith("/gateway-ws")
        if not (webhook_style or gateway) and request.headers.get("Authorization") != f"Bot {self.fake.token}":
            response: web.StreamResponse = error(401, "401: Unauthorized")
        else:
            response = await handler(request)
        if not gateway:
            self.fake.rest_log.append(RestCall(request.method, request.path, response.status))
            self.fake.changed()
        return response

    # -- identity and gateway -------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        return json_reply(self.fake.bot_user.payload() | {"verified": True, "mfa_enabled": False, "flags": 0})

    async def application(self, request: web.Request) -> web.Response:
        owner = self.world.users[self.fake.owner.id]
        return json_reply(
            {
                "id": str(self.fake.application_id),
                "name": self.fake.bot_user.name,
                "icon": None,
                "description": "whymoji under test",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": owner.payload(),
                "verify_key": "0" * 64,
                "team": None,
                "flags": 0,
                "summary": "",
            }
        )

    async def gateway(self, request: web.Request) -> web.Response:
        return json_reply({"url": self.fake.gateway_url})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        return json_reply(
            {
                "url": self.fake.gateway_url,
                "shards": self.fake.shard_count,
                "session_start_limit": {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1},
            }
        )

    # -- application commands ---------------------------------------------------------------

    async def put_commands(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        stored = self.fake.commands.put(int(guild) if guild else None, await read_body(request))
        return json_reply(stored)

    async def get_commands(self, request: web.Request) -> web.Response:
        guild = request.match_info.get("guild")
        commands = self.fake.commands
        return json_reply(commands.guild_commands.get(int(guild), []) if guild else commands.global_commands)

    # -- channels, messages, reactions ------------------------------------------------------

    def _channel_error(self, channel_id: int) -> web.Response | None:
        if channel_id not in self.world.channels:
            return error(404, "Unknown Channel", UNKNOWN_CHANNEL)
        if channel_id in self.fake.forbidden_channels:
            return error(403, "Missing Permissions", MISSING_PERMISSIONS)
        return None

    async def get_channel(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        return self._channel_error(channel_id) or json_reply(self.world.channels[channel_id].payload())

    async def get_thread_member(self, request: web.Request) -> web.Response:
        channel_id, user_id = int(request.match_info["channel"]), int(request.match_info["user"])
        if problem := self._channel_error(channel_id):
            return problem
        thread = self.world.channels[channel_id]
        if not thread.is_thread or user_id not in thread.members:
            return error(404, "Unknown Member", UNKNOWN_MEMBER)
        return json_reply(thread.thread_member_payload(user_id))

    async def create_message(self, request: web.Request) -> web.Response:
        channel_id = int(request.match_info["channel"])
        allowed, headers = self.fake.message_bucket.take(channel_id)
        if problem := self._channel_error(channel_id):
            return problem
        if not allowed:
            return too_many_requests(self.fake.message_bucket.window_s, headers)
        body = await read_body(request)
        if problem := self._invalid(body):
            return problem
        message = self.world.add_message(
            channel_id,
            self.fake.bot_user,
            body.get("content") or "",
            embeds=body.get("embeds") or [],
            flags=body.get("flags") or 0,
            body=body,
            components=body.get("components") or [],
        )
        return json_reply(message.payload(self.world), headers=headers)

    def _invalid(self, body: dict[str, Any]) -> web.Response | None:
        problem = body_problem(body)
        if problem is None:
            return None
        log.error("fake discord: invalid form body: %s", problem)
        self.fake.invalid_bodies.append(problem)
        return error(400, f"Invalid Form Body: {problem}", INVALID_FORM_BODY)

    def _message(self, request: web.Request) -> tuple[Message | None, web.Response | None]:
        channel_id, message_id = int(request.match_info["channel"]), int(request.match_info["message"])
        if problem := self._channel_error(channel_id):
            return None, problem
        message = self.world.messages.get(message_id)
        if message is None or message.channel_id != channel_id:
            return None, error(404, "Unknown Message", UNKNOWN_MESSAGE)
        return message, None

    async def get_message(self, request: web.Request) -> web.Response:
        message, problem = self._message(request)
        return problem or json_reply(message.payload(self.world))

    async def add_reaction(self, request: web.Request) -> web.Response:
        allowed, headers = self.fake.reaction_bucket.take(int(request.match_info["channel"]))
        message, problem = self._message(request)
        if problem:
            return problem
        if self.fake.pending_rate_limits > 0:
            self.fake.pending_rate_limits -= 1
            return too_many_requests(self.fake.rate_limit_retry_after, headers)
        if not allowed:
            return too_many_requests(float(headers["X-RateLimit-Reset-After"]), headers)
        emoji = request.match_info["emoji"]
        if emoji not in message.reactions:
            message.reactions.append(emoji)
            message.reaction_times.append(time.monotonic())
        return web.Response(status=204, headers=headers)

    async def remove_reaction(self, request: web.Request) -> web.Response:
        message, problem = self._message(request)
        if problem:
            return problem
        emoji = request.match_info["emoji"]
        if emoji in message.reactions:
            message.reactions.remove(emoji)
        return web.Response(status=204)

    async def open_dm(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        user = self.world.users.get(int(body.get("recipient_id", 0)))
        if user is None:
            return error(400, "Invalid Form Body", 50035)
        return json_reply(self.world.dm_channel(user).payload())

    # -- guilds -----------------------------------------------------------------------------

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self.world.guilds.get(int(request.match_info["guild"]))
        if guild is None:
            return error(404, "Unknown Guild", 10004)
        payload = guild.create_payload()
        for key in ("members", "channels", "threads", "voice_states", "presences", "joined_at", "large"):
            payload.pop(key)
        return json_reply(payload)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self.world.guilds.get(int(request.match_info["guild"]))
        if guild is None:
            return error(404, "Unknown Guild", 10004)
        return json_reply([channel.payload() for channel in guild.channels])

    async def get_member(self, request: web.Request) -> web.Response:
        guild = self.world.guilds.get(int(request.match_info["guild"]))
        user_id = int(request.match_info["user"])
        if guild is None or user_id not in guild.members:
            return error(404, "Unknown Member", UNKNOWN_MEMBER)
        return json_reply(guild.member_payload(user_id))

    # -- interactions and their webhooks ----------------------------------------------------

    async def interaction_callback(self, request: web.Request) -> web.Response:
        record = self.fake.interactions.get(request.match_info["token"])
        if record is None or str(record.id) != request.match_info["id"]:
            return error(404, "Unknown interaction", UNKNOWN_INTERACTION)
        if record.acknowledged:
            return error(400, "Interaction has already been acknowledged.", ALREADY_ACKNOWLEDGED)
        body = await read_body(request)
        kind, data = body.get("type"), body.get("data") or {}
        if problem := self._invalid(data):
            return problem
        if kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and record.source is None:
            return error(400, "Interaction callback type only valid for component interactions", INVALID_FORM_BODY)
        record.responses.append(("callback", body))
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            flags = (data.get("flags") or 0) | (LOADING if kind == DEFERRED_CHANNEL_MESSAGE else 0)
            record.original = self._webhook_message(record, data, flags)
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            # The response is the message whose component was used: updated now, or edited later.
            record.original = record.source
            if kind == UPDATE_MESSAGE and record.source is not None:
                _apply_edit(record.source, data)
        else:
            log.error("fake discord: unsupported interaction callback type %s", kind)
            return error(400, f"unsupported callback type {kind}", INVALID_FORM_BODY)
        interaction = {"id": str(record.id), "type": record.type}
        result: dict[str, Any] = {"interaction": interaction}
        if record.original is not None:
            flags = record.original.flags
            interaction |= {
                "response_message_id": str(record.original.id),
                "response_message_loading": bool(flags & LOADING),
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            }
            result["resource"] = {"type": kind, "message": self._webhook_payload(record.original)}
        if request.query.get("with_response") in ("1", "true", "True"):
            return json_reply(result)
        return web.Response(status=204)

    def _webhook_message(self, record: InteractionRecord, data: dict[str, Any], flags: int) -> Message:
        return self.world.add_message(
            record.channel_id,
            self.fake.bot_user,
            data.get("content") or "",
            embeds=data.get("embeds") or [],
            flags=flags,
            body=data,
            webhook_id=self.fake.application_id,
            components=data.get("components") or [],
            visible_to=record.user_id if flags & EPHEMERAL else None,
        )

    def _webhook_payload(self, message: Message) -> dict[str, Any]:
        return message.payload(self.world) | {"application_id": str(self.fake.application_id)}

    def _webhook_record(self, request: web.Request) -> InteractionRecord | None:
        if request.match_info["app"] != str(self.fake.application_id):
            return None
        return self.fake.interactions.get(request.match_info["token"])

    def _webhook_target(self, request: web.Request) -> tuple[InteractionRecord | None, Message | None]:
        record = self._webhook_record(request)
        if record is None:
            return None, None
        wanted = request.match_info["message"]
        if wanted == "@original":
            return record, record.original
        return record, next((m for m in record.followups if str(m.id) == wanted), None)

    async def followup(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        if record is None or not record.acknowledged:
            return error(404, "Unknown Webhook", 10015)
        body = await read_body(request)
        if problem := self._invalid(body):
            return problem
        record.responses.append(("followup", body))
        original = record.original
        if original is not None and original.flags & LOADING:
            # Discord turns the first followup after a deferral into the original response.
            original.content, original.embeds, original.body = body.get("content") or "", body.get("embeds") or [], body
            original.components = body.get("components") or []
            original.flags = (body.get("flags") or 0) | (original.flags & EPHEMERAL)
            return json_reply(self._webhook_payload(original))
        message = self._webhook_message(record, body, body.get("flags") or 0)
        record.followups.append(message)
        return json_reply(self._webhook_payload(message))

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        _, message = self._webhook_target(request)
        if message is None:
            return error(404, "Unknown Message", UNKNOWN_MESSAGE)
        return json_reply(self._webhook_payload(message))

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        record, message = self._webhook_target(request)
        if record is None or message is None:
            return error(404, "Unknown Message", UNKNOWN_MESSAGE)
        body = await read_body(request)
        if problem := self._invalid(body):
            return problem
        record.responses.append(("edit_original" if message is record.original else "edit_followup", body))
        _apply_edit(message, body)
        message.flags &= ~LOADING
        return json_reply(self._webhook_payload(message))

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        record, message = self._webhook_target(request)
        if record is None or message is None:
            return error(404, "Unknown Message", UNKNOWN_MESSAGE)
        record.responses.append(("delete", {"message_id": str(message.id)}))
        self.world.messages.pop(message.id, None)
        if message is record.original:
            record.original = None
        else:
            record.followups.remove(message)
        return web.Response(status=204)

    async def unknown(self, request: web.Request) -> web.Response:
        log.error("fake discord: no route for %s %s", request.method, request.path)
        self.fake.unknown_routes.append(f"{request.method} {request.path}")
        return error(404, "404: Not Found")


def _apply_edit(message: Message, body: dict[str, Any]) -> None:
    """An edit changes only what its body names."""
    if "content" in body:
        message.content = body["content"] or ""
    if "embeds" in body:
        message.embeds = body["embeds"] or []
    if "components" in body:
        message.components = body["components"] or []
    message.body = body
