"""``/why`` and the "Why these emojis?" message command: which words picked the emojis.

``/why target`` takes a message link (any channel or thread of this server the asker can read;
a private thread only for its members and those who may manage threads), a message ID (this
channel), or free text of at most 4,000 characters. Who may ask is decided first, in memory
(``bot.rules.explanation_limits``: one at a time per user, a pause per user, a cap per server
with a short line behind it; refused only when the wait would be long). Discord wants a first
answer within 3 s, and reading the target may take longer (a REST fetch, a settings read), so a
private request is deferred privately at once and everything after it, refusals included, is a
private followup. A public request checks its target before deferring publicly, so refusals (a
bad link, another server, a message that is gone or unreadable, an opted-out author, no text)
stay private; that check is bounded, and one that runs out of time is answered "try again". A
public answer quotes a message only where everyone who can see the channel can read the
message's channel (``bot.rules.audience``); otherwise it is deferred and sent privately, saying
why. Every path to a message (link, ID, message command) goes through ``Why.message_target``.
From the deferral on, the request waits for its turn in line, and the answer (or the model's
failure) is as visible as the deferral. The text explained is what the model saw
(``normalize_markup``).

Under every answer (and every moderation hint's explanation) are two menus (``bot.interactions.picks``):
one emoji, one word. A pick is answered at once from the explanation kept in memory
(``bot.rules.kept``, no model run): on a private answer it updates that answer, on a public one
the picker gets a private answer (with menus of its own) and the public message stays as it is.
A kept explanation is shown to whoever can see the answer it belongs to. When it is no longer
kept (a restart, or dropped for room), a message is read and explained again for the picker,
deferred first, under the usual limits and with the same checks as a ``/why`` on a link
(``Why.message_target``: another server, a channel or private thread they cannot read, an
opted-out author, a deleted message); a typed text cannot come back, since it was never stored:
the picker is asked to run ``/why`` again and the menus are removed.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import discord
from discord import app_commands
from discord.abc import GuildChannel, Messageable
from discord.ext import commands

from bot.app import RESTARTING, WhymojiBot
from bot.errors import WhymojiError
from bot.explain.explanation import Explanation
from bot.explain.explore import render_emoji_markdown, render_word_markdown
from bot.explain.render import DISCORD_LIMIT, render_markdown
from bot.interactions.picks import ALL_FIVE, ExplanationMenu, Kind, Menu, Pick, Subject, menus, option_for
from bot.interactions.replies import NO_PINGS, defer_privately, reply_privately, report_failure
from bot.rules.audience import ChannelRules, Overwrite, ServerRoles, audience_can_read
from bot.rules.explanation_limits import ExplanationLimitReached
from bot.rules.markup import normalize_markup
from bot.serving.worker import WorkerStopped
from bot.throttled_log import ThrottledLog

log = logging.getLogger(__name__)

CONTEXT_MENU_NAME = "Why these emojis?"
#: Longest target Discord lets a user type (the option's max_length); a client can send more.
MAX_TARGET_CHARS = 4000
#: How long a public request's target check may take before it is answered "try again".
TARGET_CHECK_S = 2.0

_MESSAGE_LINK = re.compile(r"^<?https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+|@me)/(\d+)/(\d+)/?>?$")
_MESSAGE_ID = re.compile(r"^\d{15,21}$")


class UnexplainableTarget(WhymojiError):
    """A `/why` request that cannot be answered; the message says why, politely."""


@dataclass(frozen=True)
class MessageRef:
    """Where a message is: ``guild_id`` None for DMs, ``channel_id`` None for "this channel"."""

    message_id: int
    channel_id: int | None = None
    guild_id: int | None = None


@dataclass(frozen=True)
class Target:
    """What a request explains: the text the model reads, the ``Subject`` the menus name, and,
    when a public answer may not quote it, why (the answer is then private and says so)."""

    text: str
    subject: Subject
    private_because: str | None = None


#: The private note for a pick whose typed text is no longer kept.
EXPIRED = (
    "I no longer have that explanation: I keep typed text only in memory for a while, never on disk. "
    "Please run /why on it again."
)
#: The private note for a pick whose explanation no longer matches its menus (the message was edited).
CHANGED = "That message has changed since this answer, so its menus no longer fit; please run /why on it again."


def parse_target(target: str) -> MessageRef | str:
    """A message link or ID becomes a ``MessageRef``; anything else is text to explain."""
    stripped = target.strip()
    if link := _MESSAGE_LINK.match(stripped):
        guild, channel, message = link.groups()
        return MessageRef(int(message), int(channel), None if guild == "@me" else int(guild))
    if _MESSAGE_ID.match(stripped):
        return MessageRef(int(stripped))
    return target


class Why(commands.Cog):
    """Explains predictions on request, to the asker only unless they make it public."""

    def __init__(self, bot: WhymojiBot) -> None:
        self.bot = bot
        self.context_menu = app_commands.ContextMenu(name=CONTEXT_MENU_NAME, callback=self.why_message)
        # The menu is registered on the tree itself, so the cog's error handler never hears of
        # its failures: it gets the same handler of its own.
        self.context_menu.error(self.cog_app_command_error)
        self.target_check_s = TARGET_CHECK_S
        self.failures = ThrottledLog(log)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.context_menu)
        self.bot.add_dynamic_items(ExplanationMenu)  # picks in menus posted before a restart too

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.context_menu.name, type=self.context_menu.type)
        self.bot.remove_dynamic_items(ExplanationMenu)

    @app_commands.command(name="why", description="Show which words made DeepMoji pick its emojis")
    @app_commands.describe(
        target="A message link, a message ID from this channel, or any text",
        public="Show the answer to everyone in the channel (default: only you)",
    )
    async def why(
        self,
        interaction: discord.Interaction,
        target: app_commands.Range[str, 1, MAX_TARGET_CHARS],
        public: bool = False,
    ) -> None:
        if len(target) > MAX_TARGET_CHARS:  # Discord's limit binds its own app, not every client
            await reply_privately(
                interaction,
                f"That is more than the {MAX_TARGET_CHARS:,} characters Discord allows; "
                "please send a shorter text, or a link to the message.",
            )
            return
        await self._explain(interaction, lambda: self._target(interaction, target, public=public), public=public)

    async def why_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message command: explains the message it was used on, to the asker only."""
        await self._explain(interaction, lambda: self.message_target(interaction, message, public=False), public=False)

    async def _explain(
        self, interaction: discord.Interaction, read_target: Callable[[], Awaitable[Target]], *, public: bool
    ) -> None:
        """Admit the request (running, or waiting in its server's line), read its target, wait for
        its turn, explain it; every refusal is a private answer.

        A public request whose target may not be shown to everyone here is deferred privately
        and answered privately, saying why (``Target.private_because``).
        """
        try:
            with self.bot.explanation_limits.place(interaction.guild_id, interaction.user.id) as place:
                if public:
                    target = await self._within_first_answer(read_target())
                    public = target.private_because is None
                    await interaction.response.defer(thinking=True, ephemeral=not public)
                else:
                    await defer_privately(interaction)
                    target = await read_target()
                await place.turn()  # in the server's line, after "thinking...", while others run
                await self._answer(interaction, target, public=public)
        except (UnexplainableTarget, ExplanationLimitReached) as refusal:
            await reply_privately(interaction, str(refusal))

    async def _within_first_answer(self, reading: Awaitable[Target]) -> Target:
        """The target, if it can be had in time for Discord's first answer."""
        try:
            async with asyncio.timeout(self.target_check_s):
                return await reading
        except TimeoutError:
            raise UnexplainableTarget(
                "Discord or my settings are slow right now; please try again in a moment."
            ) from None

    async def _target(self, interaction: discord.Interaction, target: str, *, public: bool) -> Target:
        parsed = parse_target(target)
        if isinstance(parsed, MessageRef):
            return await self.message_target(interaction, parsed, public=public)
        text = normalize_markup(parsed)
        if not text:
            raise UnexplainableTarget("There is no text there for me to read: only markup or code.")
        return Target(text, Subject.text(interaction.id))  # the asker's own words: anyone may see them

    async def message_target(
        self, interaction: discord.Interaction, target: MessageRef | discord.Message, *, public: bool
    ) -> Target:
        """The one way from a message to what an answer may show, for every path that explains a
        message (a link, an ID, the message command, and any later one): the asker must be able
        to read the message's channel (``readable_channel``), its author must not have opted out
        (unless they ask), and a public answer may quote it only where everyone can read it
        (``Target.private_because``). Raises ``UnexplainableTarget`` with the polite reason."""
        if isinstance(target, MessageRef):
            if target.channel_id is not None and target.guild_id != interaction.guild_id:
                raise UnexplainableTarget(
                    "That link points to another server or a DM; I only explain messages from here."
                )
            channel = await self.readable_channel(interaction, target.channel_id)
            message = await self._fetch_message(channel, target.message_id)
        else:
            channel = await self.readable_channel(interaction, target.channel.id)
            message = target
        text = await self._message_text(interaction, message)
        return Target(text, _subject_of(message), self._private_because(interaction, channel) if public else None)

    async def _fetch_message(
        self, channel: GuildChannel | discord.Thread | Messageable, message_id: int
    ) -> discord.Message:
        if not hasattr(channel, "fetch_message"):  # a category or forum has no messages
            raise UnexplainableTarget("I can't see the channel of that message.")
        try:
            return await cast("discord.abc.Messageable", channel).fetch_message(message_id)
        except discord.NotFound:
            raise UnexplainableTarget("I couldn't find that message; it may have been deleted.") from None
        except discord.Forbidden:
            raise UnexplainableTarget("I don't have permission to read messages in that channel.") from None
        except (discord.HTTPException, discord.RateLimited) as error:
            log.warning("fetching message %s for /why failed: %s", message_id, error)
            raise UnexplainableTarget("Discord didn't give me that message just now; please try again.") from None

    async def readable_channel(
        self, interaction: discord.Interaction, channel_id: int | None
    ) -> GuildChannel | discord.Thread | Messageable:
        """The channel or thread (``None``: the interaction's), once the asker is known to be able
        to read its messages: View Channel and Read Message History (else ``UnexplainableTarget``).

        In the interaction's own channel the permissions are Discord's, sent with the interaction
        (overwrites included); elsewhere discord.py computes them from the cached roles and
        overwrites. Threads take their permissions from the parent channel, but a private thread
        is readable only by its members and those who may manage threads; archived threads are
        not in discord.py's cache and are fetched. In a DM both people read everything.
        """
        if channel_id is None or channel_id == interaction.channel_id:
            here = interaction.channel
            if here is None:
                raise UnexplainableTarget("I can't see this channel.")
            if interaction.guild is not None:
                allowed = interaction.permissions
                if not (allowed.view_channel and allowed.read_message_history):
                    raise UnexplainableTarget(
                        "You can't read this channel's message history, so I won't explain its messages."
                    )
            return here
        guild = interaction.guild
        if guild is None:
            raise UnexplainableTarget("I can't see the channel of that message.")
        channel = guild.get_channel_or_thread(channel_id) or await self._fetch_channel(guild, channel_id)
        if channel is None:
            raise UnexplainableTarget("I can't see the channel of that message.")
        try:
            allowed = channel.permissions_for(cast("discord.Member", interaction.user))  # in a server: a Member
        except discord.ClientException:  # a thread whose parent channel the bot cannot see
            raise UnexplainableTarget("I can't see the channel of that message.") from None
        if not (allowed.view_channel and allowed.read_message_history):
            raise UnexplainableTarget("You can't read that channel, so I won't explain messages from it.")
        if (
            isinstance(channel, discord.Thread)
            and channel.is_private()
            and not allowed.manage_threads
            and not await self._in_thread(channel, interaction.user.id)
        ):
            raise UnexplainableTarget("That is a private thread you're not in, so I won't explain messages from it.")
        return channel

    @staticmethod
    def _private_because(interaction: discord.Interaction, source: object) -> str | None:
        """Why a public answer here may not quote a message of ``source``, or ``None`` when
        everyone who can see this channel can read that one (``bot.rules.audience``)."""
        guild, here = interaction.guild, interaction.channel
        if guild is None:
            return None  # a DM: the message is in it
        if isinstance(source, discord.Thread) and source.is_private():
            if here is not None and source.id == here.id:
                return None  # who sees the thread is who reads it
            return "that message is in a private thread."
        answer_rules, source_rules = _channel_rules(guild, here), _channel_rules(guild, source)
        if answer_rules is None or source_rules is None:
            return "I couldn't check who can see this channel."
        roles = ServerRoles(
            guild.default_role.permissions.value,
            {role.id: role.permissions.value for role in guild.roles if role.id != guild.id},
        )
        exempt = {guild.owner_id, *([guild.me.id] if guild.me is not None else [])}
        if audience_can_read(roles, answer_rules, source_rules, exempt={e for e in exempt if e is not None}):
            return None
        return f"not everyone who can see this channel can read {getattr(source, 'mention', 'that channel')}."

    @staticmethod
    async def _fetch_channel(guild: discord.Guild, channel_id: int) -> GuildChannel | discord.Thread | None:
        try:
            return await guild.fetch_channel(channel_id)
        except (discord.NotFound, discord.Forbidden, discord.InvalidData):
            return None
        except (discord.HTTPException, discord.RateLimited) as error:
            log.warning("fetching channel %s for /why failed: %s", channel_id, error)
            raise UnexplainableTarget("Discord didn't tell me about that channel just now; please try again.") from None

    @staticmethod
    async def _in_thread(thread: discord.Thread, user_id: int) -> bool:
        try:
            await thread.fetch_member(user_id)
        except discord.NotFound:
            return False
        except (discord.HTTPException, discord.RateLimited) as error:
            log.warning("checking membership of thread %s for /why failed: %s", thread.id, error)
            raise UnexplainableTarget("I couldn't check who is in that thread just now; please try again.") from None
        return True

    async def _message_text(self, interaction: discord.Interaction, message: discord.Message) -> str:
        """The message's text as the model sees it, unless its author opted out."""
        if message.author.id != interaction.user.id and await self.bot.store.is_opted_out(message.author.id):
            raise UnexplainableTarget("The author of that message opted out of whymoji, so I won't explain it. Sorry!")
        text = normalize_markup(message.content)
        if not text:
            raise UnexplainableTarget("That message has no text for me to read.")
        return text

    async def _answer(self, interaction: discord.Interaction, target: Target, *, public: bool) -> None:
        note = "" if target.private_because is None else f"-# Only you see this: {target.private_because}\n"
        view: discord.ui.View | None = None
        try:
            explanation = await self.bot.worker.explain(target.text)
        except WorkerStopped:  # shutting down
            answer = RESTARTING
        except WhymojiError as error:  # Overloaded, EmptyTextError
            log.info("/why not answered: %s", error)
            answer = f"I couldn't explain that: {error}"
        else:
            answer = render_markdown(explanation, limit=DISCORD_LIMIT - len(note))
            view = menus(explanation, target.subject, private=not public)
            if view is not None:
                self.bot.kept_explanations.keep(target.subject, explanation)
            self.bot.metrics.why_requests.inc()
        # After a deferral Discord keeps the visibility chosen there; say so explicitly anyway.
        if view is None:
            await interaction.followup.send(note + answer, ephemeral=not public, allowed_mentions=NO_PINGS)
        else:
            await interaction.followup.send(note + answer, ephemeral=not public, allowed_mentions=NO_PINGS, view=view)

    # -- picks in the menus under an explanation ------------------------------------------------

    @commands.Cog.listener()
    async def on_explanation_pick(self, interaction: discord.Interaction, pick: Pick) -> None:
        """A pick in the menus under an answer or a hint (``bot.interactions.picks``); always answered."""
        try:
            answer = await self._answer_pick(interaction, pick)
        except Exception as error:  # anything unexpected still gets a polite answer
            answer = "failed"
            await report_failure(
                interaction, error, "Something went wrong while showing that; please try again.", self.failures
            )
        self.bot.metrics.why_picks.labels(answer=answer).inc()

    async def _answer_pick(self, interaction: discord.Interaction, pick: Pick) -> str:
        """Show the picked view; returns how it was answered (the ``why_picks`` label)."""
        explanation = self.bot.kept_explanations.get(pick.subject)
        answer = "kept"
        if explanation is None:
            if pick.subject.kind is Kind.TEXT:
                await self._expired(interaction)
                return "expired"
            explanation = await self._explain_again(interaction, pick)
            if explanation is None:
                return "refused"
            answer = "recomputed"
        content = _picked_view(explanation, pick)
        if content is None:
            await reply_privately(interaction, CHANGED)
            return "refused"
        view = menus(explanation, pick.subject, private=True, chosen=pick.choice)
        if view is None:  # cannot happen for an explanation that was given menus; be safe anyway
            await reply_privately(interaction, content)
        elif pick.private:  # the picker's own answer: it changes
            if interaction.response.is_done():
                await interaction.edit_original_response(content=content, view=view, allowed_mentions=NO_PINGS)
            else:
                await interaction.response.edit_message(content=content, view=view, allowed_mentions=NO_PINGS)
        elif interaction.response.is_done():  # a public answer stays; the picker gets a private one
            await interaction.followup.send(content, view=view, ephemeral=True, allowed_mentions=NO_PINGS)
        else:
            await interaction.response.send_message(content, view=view, ephemeral=True, allowed_mentions=NO_PINGS)
        return answer

    async def _expired(self, interaction: discord.Interaction) -> None:
        """A typed text's explanation is gone for good: the menus go, the picker is told why."""
        await interaction.response.edit_message(view=None)
        await interaction.followup.send(EXPIRED, ephemeral=True, allowed_mentions=NO_PINGS)

    async def _explain_again(self, interaction: discord.Interaction, pick: Pick) -> Explanation | None:
        """The picked message explained again for the picker, as a ``/why`` on its link would
        be: the same limits and checks; deferred first (the answer stays until it is ready, or
        "thinking..." privately under a public one). None when refused (answered privately)."""
        subject = pick.subject
        ref = MessageRef(subject.key, subject.channel_id, subject.guild_id or None)
        try:
            with self.bot.explanation_limits.slot(interaction.guild_id, interaction.user.id):
                if pick.private:
                    await interaction.response.defer()  # a component's deferral: the answer stays as it is
                else:
                    await defer_privately(interaction)
                text = (await self.message_target(interaction, ref, public=False)).text
                explanation = await self.bot.worker.explain(text)
        except (UnexplainableTarget, ExplanationLimitReached) as refusal:
            await reply_privately(interaction, str(refusal))
            return None
        except WhymojiError as error:  # Overloaded, WorkerStopped...
            log.info("pick not answered: %s", error)
            await reply_privately(interaction, f"I couldn't explain that again: {error}")
            return None
        self.bot.kept_explanations.keep(subject, explanation)
        self.bot.metrics.why_requests.inc()
        return explanation

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Anything unexpected still gets a polite answer."""
        await report_failure(
            interaction, error, "Something went wrong while explaining that; please try again.", self.failures
        )


def _subject_of(message: discord.Message) -> Subject:
    return Subject.message(message.guild.id if message.guild else None, message.channel.id, message.id)


def _picked_view(explanation: Explanation, pick: Pick) -> str | None:
    """The answer a pick asks for, or None when the explanation would not offer that pick under
    that label (the message changed since the menus were made)."""
    if option_for(explanation, pick) is None:
        return None
    try:
        if pick.menu is Menu.EMOJI:
            if pick.value == ALL_FIVE:
                return render_markdown(explanation)
            return render_emoji_markdown(explanation, int(pick.value))
        return render_word_markdown(explanation, int(pick.value))
    except ValueError:  # NotExplorable, or a value that is no number
        return None


def _channel_rules(guild: discord.Guild, channel: object) -> ChannelRules | None:
    """The permission overwrites that decide who reads ``channel`` (a thread: its parent's), or
    ``None`` when they are not known (a channel or parent not in discord.py's cache)."""
    if isinstance(channel, discord.Thread):
        channel = channel.parent
    overwrites = getattr(channel, "overwrites", None)
    if not isinstance(overwrites, dict):
        return None
    everyone, roles, members = Overwrite(), {}, {}
    for subject, overwrite in overwrites.items():
        allow, deny = overwrite.pair()
        rule = Overwrite(allow.value, deny.value)
        if isinstance(subject, discord.Role) or getattr(subject, "type", None) is discord.Role:
            if subject.id == guild.id:
                everyone = rule
            else:
                roles[subject.id] = rule
        else:
            members[subject.id] = rule
    return ChannelRules(everyone, roles, members)


async def setup(bot: WhymojiBot) -> None:
    await bot.add_cog(Why(bot))
