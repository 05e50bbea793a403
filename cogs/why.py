"""``/why`` and the "Why these emojis?" message command: which words picked the emojis.

``/why target`` takes a message link (any channel of this server the asker can read), a message
ID (this channel), or free text. Everything that can go wrong with the target (a bad link,
another server, a message that is gone or unreadable, an opted-out author, no text) is checked
before deferring, so those answers are always ephemeral even when ``public`` was asked for. The
explanation itself runs after ``defer(thinking=True)`` because it may take longer than the 3 s
Discord allows for a first answer; from then on the answer (or the model's failure, e.g. an
overloaded worker) is as visible as the deferral. The text explained is what the model saw (``normalize_markup``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import WhymojiError
from bot.markup import normalize_markup
from bot.render import render_markdown
from bot.replies import NO_PINGS, reply_privately, report_failure

log = logging.getLogger(__name__)

CONTEXT_MENU_NAME = "Why these emojis?"

_MESSAGE_LINK = re.compile(
    r"^<?https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+|@me)/(\d+)/(\d+)/?>?$"
)
_MESSAGE_ID = re.compile(r"^\d{15,21}$")


class WhyRefusal(WhymojiError):
    """A `/why` request that cannot be answered; the message says why, politely."""


@dataclass(frozen=True)
class MessageRef:
    """Where a message is: ``guild_id`` None for DMs, ``channel_id`` None for "this channel"."""

    message_id: int
    channel_id: int | None = None
    guild_id: int | None = None


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

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.context_menu = app_commands.ContextMenu(name=CONTEXT_MENU_NAME, callback=self.why_message)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.context_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.context_menu.name, type=self.context_menu.type)

    @app_commands.command(name="why", description="Show which words made DeepMoji pick its emojis")
    @app_commands.describe(
        target="A message link, a message ID from this channel, or any text",
        public="Show the answer to everyone in the channel (default: only you)",
    )
    async def why(
        self, interaction: discord.Interaction, target: app_commands.Range[str, 1, 4000], public: bool = False
    ) -> None:
        try:
            parsed = parse_target(target)
            if isinstance(parsed, MessageRef):
                text = await self._message_text(interaction, await self._fetch(interaction, parsed))
            else:
                text = normalize_markup(parsed)
                if not text:
                    raise WhyRefusal("There is no text there for me to read: only markup or code.")
        except WhyRefusal as refusal:
            await reply_privately(interaction, str(refusal))
            return
        await self._answer(interaction, text, public=public)

    async def why_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """The message command: explains the message it was used on, to the asker only."""
        try:
            text = await self._message_text(interaction, message)
        except WhyRefusal as refusal:
            await reply_privately(interaction, str(refusal))
            return
        await self._answer(interaction, text, public=False)

    async def _fetch(self, interaction: discord.Interaction, ref: MessageRef) -> discord.Message:
        """The referenced message, if the asker may read it and the bot can fetch it."""
        if ref.channel_id is not None and ref.guild_id != interaction.guild_id:
            raise WhyRefusal("That link points to another server or a DM; I only explain messages from here.")
        if ref.channel_id is None or ref.channel_id == interaction.channel_id:
            channel = interaction.channel  # the asker is here: no need to check they can read it
        else:
            channel = interaction.guild.get_channel_or_thread(ref.channel_id) if interaction.guild else None
            if channel is not None:
                allowed = channel.permissions_for(interaction.user)
                if not (allowed.view_channel and allowed.read_message_history):
                    raise WhyRefusal("You can't read that channel, so I won't explain messages from it.")
        if channel is None or not hasattr(channel, "fetch_message"):
            raise WhyRefusal("I can't see the channel of that message.")
        try:
            return await channel.fetch_message(ref.message_id)
        except discord.NotFound:
            raise WhyRefusal("I couldn't find that message; it may have been deleted.") from None
        except discord.Forbidden:
            raise WhyRefusal("I don't have permission to read messages in that channel.") from None
        except discord.HTTPException as error:
            log.warning("fetching message %s for /why failed: %s", ref.message_id, error)
            raise WhyRefusal("Discord didn't give me that message just now; please try again.") from None

    async def _message_text(self, interaction: discord.Interaction, message: discord.Message) -> str:
        """The message's text as the model sees it, unless its author opted out."""
        if message.author.id != interaction.user.id and await self.bot.store.is_opted_out(message.author.id):
            raise WhyRefusal("The author of that message opted out of whymoji, so I won't explain it. Sorry!")
        text = normalize_markup(message.content)
        if not text:
            raise WhyRefusal("That message has no text for me to read.")
        return text

    async def _answer(self, interaction: discord.Interaction, text: str, *, public: bool) -> None:
        await interaction.response.defer(thinking=True, ephemeral=not public)
        try:
            explanation = await self.bot.worker.explain(text)
        except WhymojiError as error:  # Overloaded, EmptyTextError, WorkerStopped
            log.info("/why not answered: %s", error)
            answer = f"I couldn't explain that: {error}"
        else:
            answer = render_markdown(explanation)
            self.bot.metrics.why_requests.inc()
        # After a deferral Discord keeps the visibility chosen there; say so explicitly anyway.
        await interaction.followup.send(answer, ephemeral=not public, allowed_mentions=NO_PINGS)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Anything unexpected still gets a polite answer."""
        await report_failure(interaction, error, "Something went wrong while explaining that; please try again.")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Why(bot))
