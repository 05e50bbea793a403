"""Reactions: the emojis DeepMoji predicts, placed on each message in enabled channels.

Which emojis, if any, is up to the server's rules (``bot/rules/reactions.py``): a message the
model cannot read, one left out by the reaction chance, or one that reads as distress gets
none, counted as shed (``unreadable``, ``chance``, ``distress``); blocked emojis are never
placed.

Every message ends with its reactions placed or deliberately shed (counted in
``reactions_shed{reason}``), never lost to an exception: the settings store failing sheds the
message (``store_unavailable``, logged once per interval, not per message), and so do a
shutdown that interrupts it (``shutdown``), the model failing (``model_error``) and a text it
cannot read (``refused``), the worker being full or too many messages under way (``overload``;
then before the message is even looked at, whether its channel has reactions or not: see
``MessagePredictions.handle``) or the worker stopping (``shutdown``): this feature counts every
message it sheds (``ShedReason``).

Rate limits: discord.py sleeps out a 429's ``retry_after`` up to ``bot.app.MAX_RATELIMIT_WAIT_S``
and raises ``RateLimited`` beyond; one that escapes is retried a bounded number of times here.
A message's reactions must be placed within ``REACTION_DEADLINE_S`` of the first try; what is
left then (stuck behind a long limit, or queued behind other messages in a busy channel) is
shed as ``rate_limited``, and a channel that Discord asked to wait longer than that sheds its
messages unseen until the wait is over, instead of queueing them.
A 403 in a channel means the bot may not react there: the channel is skipped until its server
changes settings or the bot restarts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import discord
from discord.ext import commands

from bot.app import WhymojiBot
from bot.errors import WhymojiError
from bot.rules.candidates import is_candidate
from bot.rules.cooldown import Cooldown
from bot.rules.markup import normalize_markup
from bot.rules.reactions import Silence, before_model, choose_reactions
from bot.rules.shedding import ShedReason, shed_failures
from bot.serving.worker import Overloaded, failure_reason
from bot.throttled_log import ThrottledLog

log = logging.getLogger(__name__)

#: Tries per reaction on a rate limit or server error that escaped discord.py's own retries.
MAX_ATTEMPTS = 3
#: A message's reactions are placed within this many seconds of the first try, or the rest are
#: shed: no retry waits beyond it, and neither does discord.py's own sleeping on a 429.
REACTION_DEADLINE_S = 10.0
#: Discord error codes that concern one reaction or one message, not the channel.
UNKNOWN_EMOJI = 10014
REACTION_BLOCKED = 90001


def reaction_channel_enabled(channel: discord.abc.Snowflake, enabled_channels: frozenset[int]) -> bool:
    """A channel is enabled by its own id; a thread also by its parent channel's."""
    parent_id = getattr(channel, "parent_id", None)
    return channel.id in enabled_channels or (parent_id is not None and parent_id in enabled_channels)


@dataclass
class Placement:
    """What happened to one message's reactions."""

    placed: int = 0
    shed: dict[ShedReason, int] = field(default_factory=dict)
    channel_forbidden: bool = False
    #: Seconds Discord asked the channel to wait, when that was too long to wait for.
    retry_after: float | None = None

    def shed_one(self, reason: ShedReason, count: int = 1) -> None:
        self.shed[reason] = self.shed.get(reason, 0) + count


DiscordError = discord.HTTPException | discord.RateLimited


def _retry_wait(error: DiscordError, attempt: int) -> float:
    """Seconds to wait before retrying: Discord's ``retry_after`` when known, else backoff."""
    retry_after: float | None = getattr(error, "retry_after", None)
    if retry_after is None:
        headers = getattr(getattr(error, "response", None), "headers", None) or {}
        header = headers.get("Retry-After")
        try:
            retry_after = None if header is None else float(header)
        except (TypeError, ValueError):
            retry_after = None
    return float(retry_after) if retry_after is not None else 0.5 * 2**attempt


def _is_rate_limit(error: DiscordError) -> bool:
    return isinstance(error, discord.RateLimited) or error.status == 429


def _is_retryable(error: DiscordError) -> bool:
    return isinstance(error, discord.RateLimited) or error.status == 429 or error.status >= 500


async def place_reactions(
    add_reaction: Callable[[str], Awaitable[object]],
    reactions: Sequence[str],
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    deadline_s: float = REACTION_DEADLINE_S,
) -> Placement:
    """Add ``reactions`` in order with ``add_reaction``; account for every one of them.

    Shed reasons: ``forbidden`` (no permission in the channel; the rest are not tried),
    ``blocked`` (the author blocked the bot), ``message_gone`` (deleted meanwhile),
    ``unknown_emoji``, ``rate_limited`` (retries exhausted, a wait that would end after
    ``deadline_s`` seconds from now, or the deadline reached while discord.py waited; the rest
    are not tried) and ``http_error``.
    """
    placement = Placement()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    for position, reaction in enumerate(reactions):
        remaining = len(reactions) - position
        for attempt in range(MAX_ATTEMPTS):
            try:
                async with asyncio.timeout_at(deadline):
                    await add_reaction(reaction)
            except TimeoutError:
                placement.shed_one(ShedReason.RATE_LIMITED, remaining)
                log.debug("%d reaction(s) shed: not placed within %g s", remaining, deadline_s)
                return placement
            except discord.Forbidden as error:
                if error.code == REACTION_BLOCKED:
                    placement.shed_one(ShedReason.BLOCKED, remaining)
                else:
                    placement.channel_forbidden = True
                    placement.shed_one(ShedReason.FORBIDDEN, remaining)
                return placement
            except discord.NotFound as error:
                if error.code == UNKNOWN_EMOJI:
                    placement.shed_one(ShedReason.UNKNOWN_EMOJI)
                    break
                placement.shed_one(ShedReason.MESSAGE_GONE, remaining)
                return placement
            except (discord.HTTPException, discord.RateLimited) as error:
                wait = _retry_wait(error, attempt)
                if _is_rate_limit(error) and loop.time() + wait > deadline:
                    placement.shed_one(ShedReason.RATE_LIMITED, remaining)
                    placement.retry_after = wait
                    return placement
                if not _is_retryable(error) or attempt + 1 == MAX_ATTEMPTS:
                    reason = ShedReason.RATE_LIMITED if _is_rate_limit(error) else ShedReason.HTTP_ERROR
                    placement.shed_one(reason)
                    log.warning("reaction shed (%s) after %d attempt(s): %s", reason, attempt + 1, error)
                    break
                await sleep(wait)
            else:
                placement.placed += 1
                break
    return placement


class Reactions(commands.Cog):
    """Reacts to messages in enabled channels with the top predicted emojis."""

    def __init__(
        self,
        bot: WhymojiBot,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        roll: Callable[[], float] = random.random,
    ):
        self.bot = bot
        self.sleep = sleep  # how retries wait; tests pass a recorder
        self.roll = roll  # the reaction chance's dice, uniform in [0, 1); tests pass fixed ones
        self.deadline_s = REACTION_DEADLINE_S
        self.predictions = bot.predictions
        self.cooldown = Cooldown()
        #: Channels Discord asked to wait longer than the deadline, until the wait is over.
        self.rate_limited = Cooldown()
        self.failures = ThrottledLog(log)
        #: Channels where Discord answered 403; cleared when the server's settings change.
        self.forbidden_channels: dict[int, int] = {}  # channel id -> guild id

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        guild = message.guild
        if guild is None or not is_candidate(message):
            return
        try:
            handling = self.predictions.handle(message.id)
        except Overloaded:  # too many messages under way: shed before looking at it
            self._shed(ShedReason.OVERLOAD)
            return
        with handling, shed_failures(self._shed, self.failures, "messages get no reactions"):
            await self._react(message, guild)

    async def _react(self, message: discord.Message, guild: discord.Guild) -> None:
        channel = message.channel
        if channel.id in self.forbidden_channels:
            return
        settings = await self.bot.store.get_guild(guild.id)
        if not reaction_channel_enabled(channel, settings.enabled_channels):
            return
        metrics = self.bot.metrics
        metrics.messages_seen.inc()
        text = normalize_markup(message.content)
        if not text or await self.bot.store.is_opted_out(message.author.id):
            return
        if self.rate_limited.remaining(channel.id) > 0:
            self._shed(ShedReason.RATE_LIMITED)
            return
        reading = await self.predictions.read(message.id, text)
        silence = before_model(reading, settings, self.roll())
        if silence is not None:
            self._silence(message, silence)
            return
        if not self.cooldown.try_acquire(channel.id, settings.cooldown_s):
            self._shed(ShedReason.COOLDOWN)
            return
        try:
            probabilities = await self.predictions.predict(message.id, text)
        except WhymojiError as error:  # overloaded, stopping, the model failed, nothing readable
            self._shed(ShedReason(failure_reason(error)))
            log.debug("message %s gets no reactions: %s", message.id, error)
            return
        choice = choose_reactions(probabilities, settings)
        if choice.silence is not None:
            self._silence(message, choice.silence)
            return
        reactions = [emoji.reaction for emoji in choice.emojis]
        log.debug("message %s: reacting with %s", message.id, " ".join(reactions) or "nothing above the threshold")
        placement = await place_reactions(message.add_reaction, reactions, sleep=self.sleep, deadline_s=self.deadline_s)
        if placement.retry_after is not None and self.rate_limited.try_acquire(channel.id, placement.retry_after):
            self.failures.log(
                "rate_limited",
                logging.WARNING,
                "Discord asked to wait %g s before reacting in channel %s; its reactions are shed until then",
                placement.retry_after,
                channel.id,
            )
        self._account(message, guild, placement)

    def _shed(self, reason: ShedReason) -> None:
        """A whole message gets no reactions, for ``reason``."""
        self.bot.metrics.reactions_shed.labels(reason=reason).inc()

    def _silence(self, message: discord.Message, silence: Silence) -> None:
        self._shed(silence.reason)
        log.debug("message %s gets no reactions (%s): %s", message.id, silence.reason, silence.detail)

    def _account(self, message: discord.Message, guild: discord.Guild, placement: Placement) -> None:
        metrics = self.bot.metrics
        metrics.reactions_placed.inc(placement.placed)
        for reason, count in placement.shed.items():
            metrics.reactions_shed.labels(reason=reason).inc(count)
        if placement.channel_forbidden and message.channel.id not in self.forbidden_channels:
            self.forbidden_channels[message.channel.id] = guild.id
            log.warning(
                "no permission to react in channel %s of guild %s; skipping it until settings change",
                message.channel.id,
                guild.id,
            )
        elif placement.shed:
            log.info("message %s: reactions shed %s", message.id, placement.shed)

    @commands.Cog.listener()
    async def on_whymoji_settings_changed(self, guild_id: int) -> None:
        """A server changed its settings (maybe after fixing permissions): try its channels again."""
        for channel_id in [c for c, g in self.forbidden_channels.items() if g == guild_id]:
            del self.forbidden_channels[channel_id]


async def setup(bot: WhymojiBot) -> None:
    await bot.add_cog(Reactions(bot))
