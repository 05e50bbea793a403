"""Who may start an explanation, and when, so that no user or server can keep the model to itself.

An explanation costs the model hundreds of times what a reaction does. Without limits one person
repeating ``/why`` on long messages stalled every reaction for minutes. The limits, checked in
memory so a refusal is immediate:

- one explanation at a time per user, waiting or running (a second request gets a polite "one
  at a time");
- a pause per user between requests (``why.cooldown_s``), from the moment one is admitted;
- at most ``why.max_per_server`` explanations running at once in one server, moderation hints
  included, and at most ``max_running`` (``worker.max_explanations``) in the whole bot.

A ``/why`` beyond a cap is not refused: it waits in its server's line (``place``), at most
``line_per_server`` long, and the lines take turns (round-robin between servers, first come
first served within one), so a busy server cannot starve a quiet one. Only a request whose wait
would be long (beyond ``long_wait_s``, estimated from how fast explanations have been finishing)
or whose line is full is refused, and the refusal says how long the wait would have been. A
moderation hint never waits (``slot``): it goes out without its explanation instead.

The inference worker shares the model fairly among what these limits let through.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from bot.errors import WhymojiError
from bot.rules.cooldown import Cooldown

#: Most ``/why`` requests waiting in one server's line; more are refused with the wait.
LINE_PER_SERVER = 25
#: A wait longer than this (estimated) is refused at once, saying how long it would have been.
LONG_WAIT_S = 30.0
#: How long one explanation is taken to last until some have finished (one full-size `/why`
#: takes up to 0.75 s on one quiet thread, benchmarks/README.md).
FIRST_ESTIMATE_S = 1.0
#: Weight of the newest measurement in the running estimate of seconds per explanation.
ESTIMATE_WEIGHT = 0.3


class ExplanationLimitReached(WhymojiError):
    """An explanation may not start (or wait); the message says why, politely, for the asker."""


class Place:
    """One ``/why``'s place: running, or waiting in its server's line. ``with place:`` frees it
    on exit, whatever happened; ``await place.turn()`` waits until it may run."""

    def __init__(self, limits: ExplanationLimits, guild_id: int | None, user_id: int, *, ahead: int) -> None:
        self._limits = limits
        self.guild_id = guild_id
        self.user_id = user_id
        #: Requests running or waiting in the whole bot when this one was admitted.
        self.ahead = ahead
        self.running = False
        self.left = False
        self._ready = asyncio.Event()
        self._refusal: ExplanationLimitReached | None = None

    def _start(self) -> None:
        self.running = True
        self._ready.set()

    def _refuse(self, refusal: ExplanationLimitReached) -> None:
        self._refusal = refusal
        self._ready.set()

    async def turn(self) -> None:
        """Return once this request may run; ``ExplanationLimitReached`` if the limits closed
        (the bot is shutting down) before its turn came."""
        await self._ready.wait()
        if self._refusal is not None:
            raise self._refusal

    def __enter__(self) -> Place:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._limits._leave(self)


class ExplanationLimits:
    """``place(guild_id, user_id)`` for a ``/why``, ``slot(guild_id)`` for a hint's explanation."""

    def __init__(
        self,
        *,
        cooldown_s: float,
        max_per_server: int,
        max_running: int | None = None,
        line_per_server: int = LINE_PER_SERVER,
        long_wait_s: float = LONG_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if cooldown_s < 0 or max_per_server < 1 or (max_running is not None and max_running < 1):
            raise ValueError("cooldown_s must be >= 0, max_per_server and max_running >= 1")
        if line_per_server < 0 or long_wait_s < 0:
            raise ValueError("line_per_server and long_wait_s must be >= 0")
        self.cooldown_s = cooldown_s
        self.max_per_server = max_per_server
        self.max_running = max_running
        self.line_per_server = line_per_server
        self.long_wait_s = long_wait_s
        self._clock = clock
        self._cooldown = Cooldown(clock)
        self._busy_users: set[int] = set()
        self._running: Counter[int | None] = Counter()
        self._lines: dict[int | None, deque[Place]] = {}
        #: Servers with a line, in the order they get their next turn.
        self._rotation: deque[int | None] = deque()
        self._closed: str | None = None
        #: Seconds between explanations finishing while busy (the running estimate).
        self.seconds_each = FIRST_ESTIMATE_S
        self._busy_since: float | None = None
        self._last_finished: float | None = None

    # --- /why: a place, running or in line ----------------------------------------------------

    def place(self, guild_id: int | None, user_id: int) -> Place:
        """Admit one ``/why`` now, running or waiting in line, or raise ``ExplanationLimitReached``
        (one at a time, the user's pause, a full line or a long wait, shutting down)."""
        self._admit_user(user_id)
        ahead = self.running_total() + self.waiting_total()
        place = Place(self, guild_id, user_id, ahead=ahead)
        if self._has_room(guild_id) and not self._lines.get(guild_id):
            self._run(place)
        else:
            line = self._lines.get(guild_id, ())
            wait = self.estimated_wait_s(ahead)
            if len(line) >= self.line_per_server or wait > self.long_wait_s:
                raise ExplanationLimitReached(
                    f"I have {ahead} explanations to finish before yours, about {math.ceil(wait)} s of waiting; "
                    "please try again in a minute."
                )
            if guild_id not in self._lines:
                self._lines[guild_id] = deque()
                self._rotation.append(guild_id)
            self._lines[guild_id].append(place)
        self._cooldown.try_acquire(user_id, self.cooldown_s)
        self._busy_users.add(user_id)
        return place

    def estimated_wait_s(self, ahead: int) -> float:
        """Seconds until an explanation with ``ahead`` others before it is done."""
        return (ahead + 1) * self.seconds_each

    def _leave(self, place: Place) -> None:
        if place.left:
            return
        place.left = True
        self._busy_users.discard(place.user_id)
        if place.running:
            self._finish(place.guild_id)
            return
        line = self._lines.get(place.guild_id)
        if line is not None and place in line:
            line.remove(place)
            if not line:
                self._drop_line(place.guild_id)

    # --- hints: run now or not at all ------------------------------------------------------------

    @contextmanager
    def slot(self, guild_id: int | None, user_id: int | None = None) -> Iterator[None]:
        """Admit one explanation to run now or raise ``ExplanationLimitReached``; the place is
        freed on exit. Nothing waits: a moderation hint (no ``user_id``) goes out without its
        explanation instead. With a ``user_id`` the user's limits apply too (one at a time, the
        pause, which starts when a request is admitted, not when refused)."""
        if user_id is not None:
            self._admit_user(user_id)
        if not self._has_room(guild_id) or self._lines.get(guild_id):
            raise ExplanationLimitReached(
                "I'm explaining as much as I can for this server right now; please try again in a moment."
            )
        if user_id is not None:
            self._cooldown.try_acquire(user_id, self.cooldown_s)
            self._busy_users.add(user_id)
        self._running[guild_id] += 1
        self._started()
        try:
            yield
        finally:
            self._busy_users.discard(user_id)
            self._finish(guild_id)

    # --- shutdown ---------------------------------------------------------------------------------

    def close(self, reason: str) -> int:
        """Admit nothing more and refuse every request still in line with ``reason``; running
        ones carry on. Returns how many were refused."""
        self._closed = reason
        refused = 0
        for line in self._lines.values():
            for place in line:
                place._refuse(ExplanationLimitReached(reason))
                refused += 1
        return refused

    # --- the state --------------------------------------------------------------------------------

    def running_total(self) -> int:
        return sum(self._running.values())

    def waiting_total(self) -> int:
        return sum(len(line) for line in self._lines.values())

    def _admit_user(self, user_id: int) -> None:
        if self._closed is not None:
            raise ExplanationLimitReached(self._closed)
        if user_id in self._busy_users:
            raise ExplanationLimitReached("I'm still explaining your last request: one at a time, please.")
        if (wait := self._cooldown.remaining(user_id)) > 0:
            raise ExplanationLimitReached(f"Please wait {math.ceil(wait)} s before your next explanation.")

    def _has_room(self, guild_id: int | None) -> bool:
        server_full = guild_id is not None and self._running[guild_id] >= self.max_per_server
        bot_full = self.max_running is not None and self.running_total() >= self.max_running
        return not (server_full or bot_full)

    def _run(self, place: Place) -> None:
        self._running[place.guild_id] += 1
        self._started()
        place._start()

    def _started(self) -> None:
        if self._busy_since is None:
            self._busy_since = self._clock()

    def _finish(self, guild_id: int | None) -> None:
        """One explanation ended: learn how fast they go, free its place, start the next."""
        self._running[guild_id] -= 1
        if not self._running[guild_id]:
            del self._running[guild_id]
        now = self._clock()
        if self._busy_since is not None:  # since the last one finished, or since work began
            since = self._busy_since if self._last_finished is None else max(self._busy_since, self._last_finished)
            self.seconds_each += ESTIMATE_WEIGHT * ((now - since) - self.seconds_each)
        self._last_finished = now
        if not self.running_total():
            self._busy_since = None
        self._next_turns()

    def _next_turns(self) -> None:
        """Start waiting requests while there is room: servers take turns, each line in order."""
        if self._closed is not None:
            return
        skipped = 0
        while self._rotation and skipped < len(self._rotation):
            guild_id = self._rotation[0]
            if not self._has_room(guild_id):
                if self.max_running is not None and self.running_total() >= self.max_running:
                    return  # the bot is full: nobody can start
                self._rotation.rotate(-1)  # this server is full: the next one's turn
                skipped += 1
                continue
            line = self._lines[guild_id]
            self._run(line.popleft())
            skipped = 0
            if line:
                self._rotation.rotate(-1)
            else:
                self._drop_line(guild_id)

    def _drop_line(self, guild_id: int | None) -> None:
        del self._lines[guild_id]
        self._rotation.remove(guild_id)
