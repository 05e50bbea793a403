"""Private answers to application commands, whatever state the interaction is in."""

from __future__ import annotations

import logging

import discord

from bot.store.errors import StoreError
from bot.throttled_log import ThrottledLog

log = logging.getLogger(__name__)

#: Every send passes this, even though the bot's default is the same: no reply ever pings.
NO_PINGS = discord.AllowedMentions.none()

#: The answer when the settings database fails or does not answer in time: nothing was done.
STORE_UNAVAILABLE = "My settings database isn't answering right now, so I couldn't do that; please try again later."


async def defer_privately(interaction: discord.Interaction) -> None:
    """Acknowledge now ("thinking...", seen by the user only) when the answer needs the settings
    store or Discord: an interaction not answered within 3 s is lost, whatever happens after."""
    await interaction.response.defer(thinking=True, ephemeral=True)


async def reply_privately(interaction: discord.Interaction, content: str) -> None:
    """An ephemeral answer: the first response if none was sent yet, else a followup."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(content, ephemeral=True, allowed_mentions=NO_PINGS)


async def report_failure(
    interaction: discord.Interaction, error: Exception, content: str, failures: ThrottledLog
) -> None:
    """Answer a command that failed, so nobody sees "did not respond", and log why.

    An unexpected error is logged with its traceback. The settings store failing is expected
    now and then and fails every command while it lasts: it is logged through ``failures``
    (one line per interval) and the user is told it, not ``content``.
    """
    command = interaction.command.qualified_name if interaction.command else "?"
    cause = getattr(error, "original", error)
    if isinstance(cause, StoreError):
        failures.log("store_unavailable", logging.WARNING, "/%s: settings store unavailable: %s", command, cause)
        content = STORE_UNAVAILABLE
    else:
        log.error("/%s failed", command, exc_info=error)
    try:
        await reply_privately(interaction, content)
    except discord.HTTPException as send_error:
        log.warning("could not tell the user that /%s failed: %s", command, send_error)
