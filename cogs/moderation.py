"""Moderation hints: a quiet note to the moderators' channel when a message reads hostile.

Hints, never actions: the message is not touched. A server turns hints on by choosing a
moderators' channel (``/whymoji modchannel``); from then on every message the bot can read in
that server is scored, not only those in reaction-enabled channels, because hostility matters
wherever it happens. Messages in the moderators' channel itself, by bots, or by opted-out users
are skipped, and so are messages the model cannot read (the reactions' readability gate,
*minknown*): its scores for them are noise. The reading and the score come from the ones the
reactions use (``MessagePredictions``), so a message costs one model run, plus one explanation
when a hint is posted; that explanation takes one of the server's places for explanations
(``bot.rules.explanation_limits``), and a hint whose server has none free goes out without it.
Under an explanation are ``/why``'s two menus (``bot.interactions.picks``): a moderator's pick is
answered privately by the ``/why`` cog, from the explanation kept here (``bot.kept_explanations``)
or, after a restart, explained again with the picker's own permission checks. A hint
per user and channel at most every ``moderation.cooldown_s`` seconds keeps a heated exchange
from flooding the moderators. A message that cannot be checked (the settings store or the model
fails) or whose hint cannot be posted is counted in ``moderation_hints_shed{reason}``; failures
are logged once per interval.
"""

from __future__ import annotations

import logging
from typing import cast

import discord
from discord.ext import commands

from bot.app import WhymojiBot
from bot.errors import WhymojiError
from bot.explain.render import DISCORD_LIMIT, render_markdown
from bot.interactions.picks import Subject, menus
from bot.interactions.replies import NO_PINGS
from bot.rules.candidates import is_candidate
from bot.rules.cooldown import Cooldown
from bot.rules.hostility import hostility
from bot.rules.markup import normalize_markup
from bot.rules.reactions import unreadable
from bot.rules.shedding import ShedReason, shed_failures
from bot.serving.worker import Overloaded, failure_reason
from bot.throttled_log import ThrottledLog

log = logging.getLogger(__name__)


def hint_header(*, author_id: int, channel_id: int, jump_url: str, score: float) -> str:
    """The first line of a hint; the author mention renders as a name but pings nobody."""
    return f"⚠️ Possibly hostile message (score {score:.2f}) by <@{author_id}> in <#{channel_id}>: {jump_url}"


def format_hint(header: str, explanation_markdown: str | None) -> str:
    """Header plus the explanation (already rendered to fit), or a note when there is none."""
    body = explanation_markdown if explanation_markdown is not None else "-# (no explanation available)"
    return f"{header}\n{body}"


class Moderation(commands.Cog):
    """Scores every readable message; posts a hint when a server's threshold is passed."""

    def __init__(self, bot: WhymojiBot) -> None:
        self.bot = bot
        self.predictions = bot.predictions
        self.cooldown = Cooldown()
        #: Mod channels already reported as unusable, so the log says it once.
        self.unusable_mod_channels: set[int] = set()
        self.failures = ThrottledLog(log)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        guild = message.guild
        if guild is None or not is_candidate(message):
            return
        try:
            handling = self.predictions.handle(message.id)
        except Overloaded:  # too many messages under way: not checked
            self._shed(ShedReason.OVERLOAD)
            return
        with handling, shed_failures(self._shed, self.failures, "messages are not checked for hints"):
            await self._check(message, guild)

    def _shed(self, reason: ShedReason) -> None:
        self.bot.metrics.hints_shed.labels(reason=reason).inc()

    async def _check(self, message: discord.Message, guild: discord.Guild) -> None:
        settings = await self.bot.store.get_guild(guild.id)
        if settings.mod_channel_id is None or message.channel.id == settings.mod_channel_id:
            return
        text = normalize_markup(message.content)
        if not text or await self.bot.store.is_opted_out(message.author.id):
            return
        silence = unreadable(await self.predictions.read(message.id, text), settings.min_known)
        if silence is not None:
            log.debug("message %s not scored: %s", message.id, silence.detail)
            return
        try:
            score = hostility(await self.predictions.predict(message.id, text))
        except WhymojiError as error:  # Overloaded, ModelError, no known words...
            self._shed(ShedReason(failure_reason(error)))
            log.debug("message %s not scored: %s", message.id, error)
            return
        if score < settings.mod_threshold:
            return
        key = (message.author.id, message.channel.id)
        if not self.cooldown.try_acquire(key, self.bot.config.moderation.cooldown_s):
            log.debug("message %s: hostile (%.2f) but the hint is cooling down", message.id, score)
            return
        await self._post_hint(message, guild, text, score, settings.mod_channel_id)

    async def _post_hint(
        self, message: discord.Message, guild: discord.Guild, text: str, score: float, mod_channel_id: int
    ) -> None:
        found = guild.get_channel_or_thread(mod_channel_id)
        if found is None or not hasattr(found, "send"):  # gone, hidden, or a category or forum
            self._report_unusable(mod_channel_id, guild.id, "it is gone or hidden from the bot")
            return
        mod_channel = cast("discord.abc.Messageable", found)
        header = hint_header(
            author_id=message.author.id, channel_id=message.channel.id, jump_url=message.jump_url, score=score
        )
        view: discord.ui.View | None = None
        try:
            with self.bot.explanation_limits.slot(guild.id):
                explained = await self.bot.worker.explain(text)
            explanation = render_markdown(explained, limit=DISCORD_LIMIT - len(header) - 1)
        except WhymojiError as error:  # no free place, Overloaded...: the score alone is worth a hint
            log.info("message %s: hint without explanation: %s", message.id, error)
            explanation = None
        else:  # the menus under it: a moderator's pick is answered privately (the /why cog answers picks)
            subject = Subject.message(guild.id, message.channel.id, message.id)
            view = menus(explained, subject, private=False)
            if view is not None:
                self.bot.kept_explanations.keep(subject, explained)
        try:
            if view is None:
                await mod_channel.send(format_hint(header, explanation), allowed_mentions=NO_PINGS)
            else:
                await mod_channel.send(format_hint(header, explanation), allowed_mentions=NO_PINGS, view=view)
        except discord.Forbidden:
            self._report_unusable(mod_channel_id, guild.id, "the bot may not send messages there")
            return
        except (discord.HTTPException, discord.RateLimited) as error:
            self._shed(ShedReason.POST_FAILED)
            self.failures.log("post_failed", logging.WARNING, "moderation hint not posted: %s", error)
            return
        self.unusable_mod_channels.discard(mod_channel_id)
        self.bot.metrics.hints_posted.inc()
        log.info("moderation hint posted for message %s (score %.2f)", message.id, score)

    def _report_unusable(self, channel_id: int, guild_id: int, why: str) -> None:
        self._shed(ShedReason.CHANNEL_UNUSABLE)
        if channel_id not in self.unusable_mod_channels:
            self.unusable_mod_channels.add(channel_id)
            log.warning("moderators' channel %s of guild %s unusable: %s", channel_id, guild_id, why)


async def setup(bot: WhymojiBot) -> None:
    await bot.add_cog(Moderation(bot))
