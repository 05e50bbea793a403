"""Reactions: the emojis DeepMoji predicts, placed on each message in enabled channels.

Which emojis, if any, is up to the server's rules (``bot/reaction_rules.py``): a message the
model cannot read, one left out by the reaction chance, or one that reads as distress gets
none, counted as shed (``unreadable``, ``chance``, ``distress``); blocked emojis are never
placed.

Every reaction ends placed or deliberately shed (counted in ``reactions_shed{reason}`` and
logged), never lost to an exception. discord.py already waits out 429s; one that still escapes
is retried a bounded number of times here. A 403 in a channel means the bot may not react
there: the channel is skipped until its server changes settings or the bot restarts.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import discord
from discord.ext import commands

from bot.candidates import is_candidate
from bot.cooldown import Cooldown
from bot.errors import WhymojiError
from bot.markup import normalize_markup
from bot.predictions import shared_predictions
from bot.reaction_rules import Silence, before_model, choose_reactions

log = logging.getLogger(__name__)

#: Tries per reaction on a rate limit or server error that escaped discord.py's own retries.
MAX_ATTEMPTS = 3
#: Longest pause before a retry; a longer ``retry_after`` sheds the reaction instead.
MAX_RETRY_WAIT_S = 10.0
#: Discord error codes that concern one reaction or one message, not the channel.
UNKNOWN_EMOJI = 10014
REACTION_BLOCKED = 90001


def reaction_channel_enabled(channel: object, enabled_channels: frozenset[int]) -> bool:
    """A channel is enabled by its own id; a thread also by its parent channel's."""
    parent_id = getattr(channel, "parent_id", None)
    return channel.id in enabled_channels or (parent_id is not None and parent_id in enabled_channels)


@dataclass
class Placement:
    """What happened to one message's reactions."""

    placed: int = 0
    shed: dict[str, int] = field(default_factory=dict)
    channel_forbidden: bool = False

    def shed_one(self, reason: str, count: int = 1) -> None:
        self.shed[reason] = self.shed.get(reason, 0) + count


def _retry_wait(error: Exception, attempt: int) -> float:
    """Seconds to wait before retrying: Discord's ``retry_after`` when known, else backoff."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is None:
        headers = getattr(getattr(error, "response", None), "headers", None) or {}
        try:
            retry_after = float(headers.get("Retry-After"))
        except (TypeError, ValueError):
            retry_after = None
    return float(retry_after) if retry_after is not None else 0.5 * 2**attempt


def _is_rate_limit(error: Exception) -> bool:
    return isinstance(error, discord.RateLimited) or error.status == 429


def _is_retryable(error: Exception) -> bool:
    return _is_rate_limit(error) or error.status >= 500


async def place_reactions(
    add_reaction: Callable[[str], Awaitable[object]],
    reactions: Sequence[str],
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> Placement:
    """Add ``reactions`` in order with ``add_reaction``; account for every one of them.

    Shed reasons: ``forbidden`` (no permission in the channel; the rest are not tried),
    ``blocked`` (the author blocked the bot), ``message_gone`` (deleted meanwhile),
    ``unknown_emoji``, ``rate_limited`` / ``http_error`` (retries exhausted or not worth it).
    """
    placement = Placement()
    for position, reaction in enumerate(reactions):
        remaining = len(reactions) - position
        for attempt in range(MAX_ATTEMPTS):
            try:
                await add_reaction(reaction)
            except discord.Forbidden as error:
                if error.code == REACTION_BLOCKED:
                    placement.shed_one("blocked", remaining)
                else:
                    placement.channel_forbidden = True
                    placement.shed_one("forbidden", remaining)
                return placement
            except discord.NotFound as error:
                if error.code == UNKNOWN_EMOJI:
                    placement.shed_one("unknown_emoji")
                    break
                placement.shed_one("message_gone", remaining)
                return placement
            except (discord.HTTPException, discord.RateLimited) as error:
                wait = _retry_wait(error, attempt)
                if not _is_retryable(error) or attempt + 1 == MAX_ATTEMPTS or wait > MAX_RETRY_WAIT_S:
                    reason = "rate_limited" if _is_rate_limit(error) else "http_error"
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
        bot: commands.Bot,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        roll: Callable[[], float] = random.random,
    ):
        self.bot = bot
        self.sleep = sleep  # how retries wait; tests pass a recorder
        self.roll = roll  # the reaction chance's dice, uniform in [0, 1); tests pass fixed ones
        self.predictions = shared_predictions(bot)
        self.cooldown = Cooldown()
        #: Channels where Discord answered 403; cleared when the server's settings change.
        self.forbidden_channels: dict[int, int] = {}  # channel id -> guild id

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if not is_candidate(message):
            return
        channel = message.channel
        if channel.id in self.forbidden_channels:
            return
        settings = await self.bot.store.get_guild(message.guild.id)
        if not reaction_channel_enabled(channel, settings.enabled_channels):
            return
        metrics = self.bot.metrics
        metrics.messages_seen.inc()
        text = normalize_markup(message.content)
        if not text or await self.bot.store.is_opted_out(message.author.id):
            return
        reading = await self.predictions.read(message.id, text)
        silence = before_model(reading, settings, self.roll())
        if silence is not None:
            self._silence(message, silence)
            return
        if not self.cooldown.try_acquire(channel.id, settings.cooldown_s):
            metrics.reactions_shed.labels(reason="cooldown").inc()
            return
        try:
            probabilities = await self.predictions.predict(message.id, text)
        except WhymojiError as error:  # Overloaded (the worker counts it), no known words...
            log.debug("message %s gets no reactions: %s", message.id, error)
            return
        choice = choose_reactions(self.bot.engine, probabilities, settings)
        if choice.silence is not None:
            self._silence(message, choice.silence)
            return
        reactions = [emoji.reaction for emoji in choice.emojis]
        log.debug("message %s: reacting with %s", message.id, " ".join(reactions) or "nothing above the threshold")
        placement = await place_reactions(message.add_reaction, reactions, sleep=self.sleep)
        self._account(message, placement)

    def _silence(self, message: discord.Message, silence: Silence) -> None:
        self.bot.metrics.reactions_shed.labels(reason=silence.reason).inc()
        log.debug("message %s gets no reactions (%s): %s", message.id, silence.reason, silence.detail)

    def _account(self, message: discord.Message, placement: Placement) -> None:
        metrics = self.bot.metrics
        metrics.reactions_placed.inc(placement.placed)
        for reason, count in placement.shed.items():
            metrics.reactions_shed.labels(reason=reason).inc(count)
        if placement.channel_forbidden and message.channel.id not in self.forbidden_channels:
            self.forbidden_channels[message.channel.id] = message.guild.id
            log.warning(
                "no permission to react in channel %s of guild %s; skipping it until settings change",
                message.channel.id,
                message.guild.id,
            )
        elif placement.shed:
            log.info("message %s: reactions shed %s", message.id, placement.shed)

    @commands.Cog.listener()
    async def on_whymoji_settings_changed(self, guild_id: int) -> None:
        """A server changed its settings (maybe after fixing permissions): try its channels again."""
        for channel_id in [c for c, g in self.forbidden_channels.items() if g == guild_id]:
            del self.forbidden_channels[channel_id]


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Reactions(bot))
