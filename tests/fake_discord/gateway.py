"""The fake gateway: JSON over a websocket, plain or ``zlib-stream`` compressed.

One :class:`Session` per shard keeps a numbered history of every dispatch, so a client that
resumes (op 6) gets exactly the events it missed, as Discord replays them. A session outlives
its connection: events dispatched while the client is away (after a RECONNECT, say) wait in
the history for the resume.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, VOICE, RESUME = 0, 1, 2, 3, 4, 6
RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 7, 8, 9, 10, 11

#: Close codes Discord documents and the fake uses.
UNKNOWN_OPCODE, DECODE_ERROR, AUTHENTICATION_FAILED, INVALID_SHARD = 4001, 4002, 4004, 4010

MESSAGE_CONTENT_INTENT = 1 << 15


class Connection:
    """One websocket to the client; compresses as the client asked in the URL."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        # discord.py asks for zlib-stream (zstd-stream when ``zstandard`` is installed); it
        # reads text frames whatever it asked for, so any other choice gets plain JSON.
        self._zlib = zlib.compressobj() if compress == "zlib-stream" else None
        if compress not in (None, "zlib-stream"):
            log.info("fake gateway: compression %s not supported, sending plain JSON", compress)

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        if self._zlib is None:
            await self.ws.send_str(text)
        else:
            data = self._zlib.compress(text.encode()) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
            await self.ws.send_bytes(data)


@dataclass
class Session:
    """A shard's gateway session: its id, its numbered dispatch history and its connection."""

    shard: tuple[int, int]
    intents: int
    id: str = field(default_factory=lambda: secrets.token_hex(16))
    sequence: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    connection: Connection | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def wants_content(self) -> bool:
        return bool(self.intents & MESSAGE_CONTENT_INTENT)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Number the event, keep it for replay, and send it if the client is connected."""
        async with self.lock:
            self.sequence += 1
            payload = {"op": DISPATCH, "t": event, "s": self.sequence, "d": data}
            self.history.append(payload)
            await self._send(payload)

    async def attach(self, connection: Connection, after: int | None = None) -> None:
        """Make ``connection`` current; replay every event numbered above ``after`` first."""
        async with self.lock:
            self.connection = connection
            if after is not None:
                for payload in self.history[after:]:
                    await self._send(payload)

    async def send_op(self, op: int, data: Any) -> None:
        async with self.lock:
            await self._send({"op": op, "d": data})

    def detach(self, connection: Connection | None = None) -> None:
        """Stop sending (the client is gone or told to go); events keep numbering for replay."""
        if connection is None or self.connection is connection:
            self.connection = None

    async def _send(self, payload: dict[str, Any]) -> None:
        if self.connection is None:
            return
        try:
            await self.connection.send(payload)
        except ConnectionError:
            log.info("fake gateway: connection of shard %s lost mid-send", self.shard)
            self.connection = None


class Gateway:
    """Serves gateway websockets for the fake; ``hooks`` supply READY/GUILD_CREATE data."""

    def __init__(
        self,
        *,
        token: str,
        shard_count: int,
        heartbeat_interval_ms: int,
        ready_payload: Callable[[Session], dict[str, Any]],
        guild_payloads: Callable[[Session], list[dict[str, Any]]],
        members_chunk: Callable[[int], dict[str, Any]],
        on_change: Callable[[], None],
    ) -> None:
        self.token = token
        self.shard_count = shard_count
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ready_payload = ready_payload
        self._guild_payloads = guild_payloads
        self._members_chunk = members_chunk
        self._on_change = on_change
        self.sessions: dict[int, Session] = {}
        #: Every connection attempt: (path, query string, "identify" / "resume" / "rejected ...").
        self.connections: list[tuple[str, str, str]] = []
        self.heartbeats = 0
        self._sockets: set[web.WebSocketResponse] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        connection = Connection(ws, request.query.get("compress"))
        session: Session | None = None
        try:
            if request.query.get("encoding", "json") != "json":
                log.error("fake gateway: unsupported encoding %s", request.query.get("encoding"))
                await ws.close(code=DECODE_ERROR, message=b"only encoding=json is supported")
                return ws
            await connection.send({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    log.error("fake gateway: unexpected frame type %s", message.type)
                    await ws.close(code=DECODE_ERROR)
                    break
                payload = json.loads(message.data)
                session = await self._receive(request, connection, session, payload) or session
        finally:
            self._sockets.discard(ws)
            if session is not None:
                session.detach(connection)
        return ws

    async def _receive(
        self, request: web.Request, connection: Connection, session: Session | None, payload: dict[str, Any]
    ) -> Session | None:
        op, data = payload.get("op"), payload.get("d")
        if op == HEARTBEAT:
            self.heartbeats += 1
            await connection.send({"op": HEARTBEAT_ACK})
        elif op == IDENTIFY:
            return await self._identify(request, connection, data)
        elif op == RESUME:
            return await self._resume(request, connection, data)
        elif op == REQUEST_MEMBERS and session is not None:
            await session.dispatch(
                "GUILD_MEMBERS_CHUNK", self._members_chunk(int(data["guild_id"])) | {"nonce": data.get("nonce")}
            )
        elif op in (PRESENCE, VOICE):
            log.debug("fake gateway: ignoring op %s", op)
        else:
            log.error("fake gateway: unknown op %s", op)
            await connection.ws.close(code=UNKNOWN_OPCODE)
        return None

    async def _identify(self, request: web.Request, connection: Connection, data: dict[str, Any]) -> Session | None:
        shard_id, shard_count = data.get("shard", [0, 1])
        if data.get("token") != self.token:
            return await self._reject(request, connection, AUTHENTICATION_FAILED, "rejected: bad token")
        if shard_count != self.shard_count or not 0 <= shard_id < shard_count:
            return await self._reject(request, connection, INVALID_SHARD, f"rejected: shard {shard_id}/{shard_count}")
        session = Session((shard_id, shard_count), int(data.get("intents", 0)))
        self.sessions[shard_id] = session
        self.connections.append((request.path, request.query_string, "identify"))
        await session.attach(connection)
        await session.dispatch("READY", self._ready_payload(session))
        for guild in self._guild_payloads(session):
            await session.dispatch("GUILD_CREATE", guild)
        self._on_change()
        return session

    async def _resume(self, request: web.Request, connection: Connection, data: dict[str, Any]) -> Session | None:
        session = next((s for s in self.sessions.values() if s.id == data.get("session_id")), None)
        if session is None or data.get("token") != self.token:
            self.connections.append((request.path, request.query_string, "rejected resume"))
            await connection.send({"op": INVALID_SESSION, "d": False})
            return None
        self.connections.append((request.path, request.query_string, "resume"))
        await session.attach(connection, after=int(data.get("seq") or 0))
        await session.dispatch("RESUMED", {})
        self._on_change()
        return session

    async def _reject(self, request: web.Request, connection: Connection, code: int, why: str) -> None:
        log.error("fake gateway: %s", why)
        self.connections.append((request.path, request.query_string, why))
        await connection.ws.close(code=code, message=why.encode())
        return None

    async def reconnect(self, shard_id: int) -> None:
        """Send op 7 RECONNECT and stop sending; later events wait for the client's resume."""
        session = self.sessions[shard_id]
        await session.send_op(RECONNECT, None)
        session.detach()

    async def invalidate(self, shard_id: int, *, resumable: bool) -> None:
        """Send op 9 INVALID_SESSION; a non-resumable session is forgotten (its events are lost)."""
        session = self.sessions[shard_id]
        await session.send_op(INVALID_SESSION, resumable)
        session.detach()
        if not resumable:
            del self.sessions[shard_id]

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"fake discord stopping")
