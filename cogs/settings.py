"""``/whymoji``: server settings for managers, opt-out and opt-in for everyone.

One command group holds both, so people find ``/whymoji optout`` where they find the rest.
Discord's ``default_permissions`` applies to a whole top-level command, so setting it to Manage
Server would hide ``optout`` from the very people who need it; instead the group is visible to
all and every server-setting subcommand checks Manage Server at run time, answering others
with a polite refusal. Every reply is ephemeral. Values are checked by Discord's option ranges
and again by the store (``InvalidSetting``, whose message is shown). A change announces itself
with the ``whymoji_settings_changed`` event, so the reactions feature retries channels where it
had lost permission. ``block`` and ``unblock`` take emojis as people type them
(``bot/emoji_parsing.py``) and change nothing when any of it is not one of the 64, listing
what was not understood.

Discord does not enforce an option's declared range on what a client sends, so every value is
checked again here and in the store, by the same rules as the config (``/whymoji cooldown``'s
0-86,400 s is ``reactions.cooldown_s``'s range). Every confirmation is worded from the settings
as the change left them (read in the same transaction), so it says what is now true: a
``block`` running beside another manager's lists both. ``modchannel`` warns when members who
are not moderators (Manage Server or Administrator, as for these settings) can read the chosen
channel, since hints quote messages from every channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import cast

import discord
from discord import app_commands
from discord.abc import GuildChannel
from discord.ext import commands

from bot.app import WhymojiBot
from bot.config import MAX_REACTION_COOLDOWN_S
from bot.deepmoji.emoji_parsing import parse_emojis
from bot.deepmoji.emojis import EMOJIS
from bot.interactions.replies import defer_privately, reply_privately, report_failure
from bot.store import InvalidSetting
from bot.store.settings import GuildSettings
from bot.throttled_log import ThrottledLog

log = logging.getLogger(__name__)

#: Longest per-channel pause between reacted messages a server may choose (the config's rule).
MAX_COOLDOWN_S = float(MAX_REACTION_COOLDOWN_S)
#: Longest ``block``/``unblock`` text (the declared option range, checked again here).
MAX_EMOJIS_CHARS = 400
#: Pieces of a refused ``block``/``unblock`` listed back, and the characters shown of each.
MAX_LISTED, MAX_LISTED_CHARS = 10, 40
#: Readers of a moderators' channel named in ``modchannel``'s warning.
MAX_READERS_LISTED = 10
NOT_A_MANAGER = "Only members with the Manage Server permission can change whymoji's settings."
UNKNOWN_CHANNEL = (
    "Not changed: I don't know that channel (it may have been deleted, or I can't see it). "
    "Pick one from the list Discord offers."
)
ReactableChannel = discord.TextChannel | discord.VoiceChannel | discord.ForumChannel | discord.Thread
Fraction = app_commands.Range[float, 0.0, 1.0]
Interaction = discord.Interaction


def is_manager(permissions: discord.Permissions) -> bool:
    """Manage Server or Administrator (which implies it, but unresolved permissions may not show that)."""
    return permissions.manage_guild or permissions.administrator


def emoji_line(classes: Iterable[int]) -> str:
    """Class indices as the emojis the bot places, in class order; ``none`` for none."""
    return " ".join(EMOJIS[index].reaction for index in sorted(classes)) or "none"


def distress_words(level: float) -> str:
    return "off" if level >= 1 else f"{level:g}"


def describe_settings(settings: GuildSettings) -> str:
    """``/whymoji show``: every setting on its own line, channels as (non-pinging) mentions."""
    channels = ", ".join(f"<#{c}>" for c in sorted(settings.enabled_channels)) or "none"
    mod_channel = f"<#{settings.mod_channel_id}>" if settings.mod_channel_id is not None else "off"
    return "\n".join(
        [
            "**whymoji settings for this server**",
            f"Reactions in: {channels}",
            f"Emojis per message (topk): {settings.top_k}",
            f"Minimum probability (threshold): {settings.threshold:g}",
            f"Pause per channel (cooldown): {settings.cooldown_s:g} s",
            f"Share of words the model must know (minknown): {settings.min_known:g}",
            f"Emojis never placed (block, unblock): {emoji_line(settings.blocked)}",
            f"Distress score that silences a message (distress): {distress_words(settings.distress)}",
            f"Messages reacted to (chance): {settings.chance}%",
            f"Moderators' channel: {mod_channel}",
            f"Hostility score for a hint (modthreshold): {settings.mod_threshold:g}",
        ]
    )


def non_moderator_readers(channel: discord.TextChannel) -> list[str]:
    """Who can read ``channel`` without being a moderator (Manage Server or Administrator):
    ``["everyone"]``, or mentions of the roles (each judged with @everyone's and its own
    permissions and overwrites there) and of members let in by an overwrite of their own (a
    member not in the bot's cache counts: whether they moderate cannot be told). The bot's own
    role and overwrite are not counted."""
    guild = channel.guild
    everyone = guild.default_role
    if is_manager(everyone.permissions):
        return []  # every member is a moderator
    if channel.permissions_for(everyone).view_channel:
        return ["everyone"]
    me = guild.me.id if guild.me is not None else None
    readers = [
        role.mention
        for role in sorted(guild.roles, reverse=True)
        if role != everyone
        and not is_manager(role.permissions)
        and not (role.tags is not None and role.tags.bot_id is not None and role.tags.bot_id == me)
        and channel.permissions_for(role).view_channel
    ]
    for target, overwrite in channel.overwrites.items():
        if isinstance(target, discord.Role) or overwrite.view_channel is not True or target.id == me:
            continue
        if isinstance(target, discord.Member) and is_manager(target.guild_permissions):
            continue
        readers.append(f"<@{target.id}>")
    return readers


def readers_warning(channel: discord.TextChannel) -> str:
    """``modchannel``'s warning when members who are not moderators can read ``channel``; "" if none."""
    readers = non_moderator_readers(channel)
    if not readers:
        return ""
    listed = ", ".join(readers[:MAX_READERS_LISTED])
    if len(readers) > MAX_READERS_LISTED:
        listed += f" and {len(readers) - MAX_READERS_LISTED} more"
    return (
        f" Careful: hints quote the messages they are about, from every channel I can read, and "
        f"{channel.mention} can be read by members who are not moderators (moderators: members with "
        f"Manage Server or Administrator): {listed}. Let only moderators view it, or pick another channel."
    )


def not_understood_reply(pieces: tuple[str, ...]) -> str:
    """Why ``block``/``unblock`` changed nothing: what was not understood (shortened, markdown
    escaped) and the 64 emojis that can be named."""
    shown = [discord.utils.escape_markdown(piece[:MAX_LISTED_CHARS]) for piece in pieces[:MAX_LISTED]]
    if len(pieces) > MAX_LISTED:
        shown.append(f"and {len(pieces) - MAX_LISTED} more")
    problem = f"these are not emojis I react with: {', '.join(shown)}" if pieces else "name one or more emojis"
    return f"Not changed: {problem}. I react only with these: {emoji_line(range(len(EMOJIS)))}"


def missing_bot_permissions(
    channel: GuildChannel | discord.Thread, me: discord.Member, *, needs_send: bool = False
) -> list[str]:
    """Names of the permissions the bot lacks in ``channel`` for a feature to work there."""
    allowed = channel.permissions_for(me)
    wanted = {"View Channel": allowed.view_channel, "Read Message History": allowed.read_message_history}
    if needs_send:
        wanted["Send Messages"] = allowed.send_messages
    else:
        wanted["Add Reactions"] = allowed.add_reactions
    return [name for name, granted in wanted.items() if not granted]


def server(interaction: Interaction) -> discord.Guild:
    """The server a settings command runs in: the group is guild-only, so Discord sends one."""
    if interaction.guild is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild


def server_id(interaction: Interaction) -> int:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


@app_commands.guild_only()
class Settings(commands.GroupCog, group_name="whymoji", group_description="whymoji settings and opt-out"):
    """Server settings (Manage Server) and the users' own opt-out."""

    def __init__(self, bot: WhymojiBot) -> None:
        self.bot = bot
        self.failures = ThrottledLog(log)

    # -- server managers -----------------------------------------------------------------

    @app_commands.command(name="enable", description="React to messages in a channel (default: this one)")
    @app_commands.describe(channel="The channel; leave empty for this one")
    async def enable(self, interaction: Interaction, channel: ReactableChannel | None = None) -> None:
        await self._set_channel(interaction, channel, enabled=True)

    @app_commands.command(name="disable", description="Stop reacting in a channel (default: this one)")
    @app_commands.describe(channel="The channel; leave empty for this one")
    async def disable(self, interaction: Interaction, channel: ReactableChannel | None = None) -> None:
        await self._set_channel(interaction, channel, enabled=False)

    @app_commands.command(name="topk", description="How many emojis to react with, at most")
    async def topk(self, interaction: Interaction, count: app_commands.Range[int, 1, 10]) -> None:
        await self._update(
            interaction, "top_k", count, lambda s: f"I'll react with up to {s.top_k} emojis per message."
        )

    @app_commands.command(name="threshold", description="Minimum probability for an emoji to be used")
    async def threshold(self, interaction: Interaction, value: Fraction) -> None:
        await self._update(
            interaction, "threshold", value, lambda s: f"Emojis now need a probability of at least {s.threshold:g}."
        )

    @app_commands.command(name="cooldown", description="Seconds to pause per channel after reacting")
    async def cooldown(self, interaction: Interaction, seconds: app_commands.Range[float, 0.0, MAX_COOLDOWN_S]) -> None:
        await self._update(
            interaction,
            "cooldown_s",
            seconds,
            lambda s: f"I'll pause {s.cooldown_s:g} s per channel between reactions.",
        )

    @app_commands.command(name="minknown", description="Share (0-1) of a message's words the model must know")
    async def minknown(self, interaction: Interaction, value: Fraction) -> None:
        await self._update(
            interaction,
            "min_known",
            value,
            lambda s: (
                f"Reactions and hints now need the model to know at least {s.min_known:.0%} of a message's words."
            ),
        )

    @app_commands.command(name="block", description="Emojis never to react with")
    @app_commands.describe(emojis="One or more emojis, e.g. 🔫 💀")
    async def block(self, interaction: Interaction, emojis: app_commands.Range[str, 1, 400]) -> None:
        await self._change_blocked(interaction, emojis, block=True)

    @app_commands.command(name="unblock", description="Emojis to allow again")
    @app_commands.describe(emojis="One or more emojis, e.g. 🔫 💀")
    async def unblock(self, interaction: Interaction, emojis: app_commands.Range[str, 1, 400]) -> None:
        await self._change_blocked(interaction, emojis, block=False)

    @app_commands.command(name="distress", description="Distress score (0-1) that silences reactions; 1: off")
    async def distress(self, interaction: Interaction, value: Fraction) -> None:
        def done(settings: GuildSettings) -> str:
            if settings.distress >= 1:
                return "Distress silence is off: sad messages get reactions too."
            return f"Messages with a distress score of at least {settings.distress:g} get no reactions."

        await self._update(interaction, "distress", value, done)

    @app_commands.command(name="chance", description="Percent of messages to react to")
    async def chance(self, interaction: Interaction, percent: app_commands.Range[int, 0, 100]) -> None:
        await self._update(interaction, "chance", percent, lambda s: f"I'll react to {s.chance}% of messages.")

    @app_commands.command(name="modthreshold", description="Hostility score (0-1) for a moderator hint")
    async def modthreshold(self, interaction: Interaction, value: Fraction) -> None:
        await self._update(
            interaction,
            "mod_threshold",
            value,
            lambda s: f"Hints now need a hostility score of at least {s.mod_threshold:g}.",
        )

    @app_commands.command(name="modchannel", description="Where moderator hints go (empty: hints off)")
    @app_commands.describe(channel="The moderators' channel; leave empty to turn hints off")
    async def modchannel(self, interaction: Interaction, channel: discord.TextChannel | None = None) -> None:
        if not await self._require_manager(interaction):
            return
        await defer_privately(interaction)
        mod_channel_id = channel.id if channel else None
        await self.bot.store.update_guild(server_id(interaction), mod_channel_id=mod_channel_id)
        self.bot.dispatch("whymoji_settings_changed", server_id(interaction))
        if channel is None:
            await reply_privately(interaction, "Moderator hints are off.")
            return
        message = f"Moderator hints will go to {channel.mention}."
        missing = missing_bot_permissions(channel, server(interaction).me, needs_send=True)
        if missing:
            message += f" I can't post there yet: please give me {', '.join(missing)}."
        await reply_privately(interaction, message + readers_warning(channel))

    @app_commands.command(name="show", description="Show this server's whymoji settings")
    async def show(self, interaction: Interaction) -> None:
        if not await self._require_manager(interaction):
            return
        await defer_privately(interaction)
        settings = await self.bot.store.get_guild(server_id(interaction))
        await reply_privately(interaction, describe_settings(settings))

    # -- everyone --------------------------------------------------------------------------

    @app_commands.command(name="optout", description="No reactions on, hints about or /why of your messages")
    async def optout(self, interaction: Interaction) -> None:
        await defer_privately(interaction)
        await self.bot.store.set_opted_out(interaction.user.id, True)
        await reply_privately(
            interaction,
            "You're opted out everywhere: no reactions on your messages, no moderator hints about them, "
            "and nobody else can /why them. `/whymoji optin` undoes this.",
        )

    @app_commands.command(name="optin", description="Let whymoji read your messages again")
    async def optin(self, interaction: Interaction) -> None:
        await defer_privately(interaction)
        await self.bot.store.set_opted_out(interaction.user.id, False)
        await reply_privately(interaction, "You're opted in again: whymoji reads your messages as before.")

    # -- helpers -----------------------------------------------------------------------------

    async def _require_manager(self, interaction: Interaction) -> bool:
        if is_manager(interaction.permissions):
            return True
        await reply_privately(interaction, NOT_A_MANAGER)
        return False

    async def _update(
        self, interaction: Interaction, field: str, value: float, done: Callable[[GuildSettings], str]
    ) -> None:
        """Change one setting; ``done`` words the confirmation from the settings as stored."""
        if not await self._require_manager(interaction):
            return
        await defer_privately(interaction)
        try:
            settings = await self.bot.store.update_guild(server_id(interaction), **{field: value})
        except InvalidSetting as error:  # Discord does not enforce the declared ranges: trust no client
            await reply_privately(interaction, f"Not changed: {error}.")
            return
        self.bot.dispatch("whymoji_settings_changed", server_id(interaction))
        await reply_privately(interaction, done(settings))

    async def _change_blocked(self, interaction: Interaction, typed: str, *, block: bool) -> None:
        if not await self._require_manager(interaction):
            return
        if len(typed) > MAX_EMOJIS_CHARS:
            await reply_privately(
                interaction, f"Not changed: name the emojis in at most {MAX_EMOJIS_CHARS} characters."
            )
            return
        parsed = parse_emojis(typed)
        if parsed.not_understood or not parsed.emojis:
            await reply_privately(interaction, not_understood_reply(parsed.not_understood))
            return
        await defer_privately(interaction)
        named = {emoji.index for emoji in parsed.emojis}
        change = {"block": named} if block else {"unblock": named}
        settings = await self.bot.store.change_blocked(server_id(interaction), **change)
        self.bot.dispatch("whymoji_settings_changed", server_id(interaction))
        done = "Blocked" if block else "Unblocked"
        await reply_privately(
            interaction, f"{done}: {emoji_line(named)}. Never placed now: {emoji_line(settings.blocked)}."
        )

    async def _set_channel(self, interaction: Interaction, channel: ReactableChannel | None, *, enabled: bool) -> None:
        if not await self._require_manager(interaction):
            return
        await defer_privately(interaction)
        target = channel or interaction.channel
        if target is None:
            raise app_commands.NoPrivateMessage()
        await self.bot.store.set_channel_enabled(server_id(interaction), target.id, enabled)
        self.bot.dispatch("whymoji_settings_changed", server_id(interaction))
        if not enabled:
            await reply_privately(interaction, f"Reactions are off in <#{target.id}>.")
            return
        message = f"Reactions are on in <#{target.id}>."
        if hasattr(target, "permissions_for"):
            missing = missing_bot_permissions(cast("GuildChannel", target), server(interaction).me)
            if missing:
                message += f" I can't react there yet: please give me {', '.join(missing)}."
        await reply_privately(interaction, message)

    async def cog_app_command_error(self, interaction: Interaction, error: app_commands.AppCommandError) -> None:
        """A channel Discord sent but the bot cannot resolve is named as such; a store outage or
        other surprise still gets an answer."""
        if isinstance(error, app_commands.TransformerError) and error.type is discord.AppCommandOptionType.channel:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.info("/%s: a channel option could not be resolved", command)
            try:
                await reply_privately(interaction, UNKNOWN_CHANNEL)
            except discord.HTTPException as send_error:
                log.warning("could not tell the user that /%s named an unknown channel: %s", command, send_error)
            return
        await report_failure(interaction, error, "I couldn't do that just now; please try again later.", self.failures)


async def setup(bot: WhymojiBot) -> None:
    await bot.add_cog(Settings(bot))
