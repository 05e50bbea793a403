"""Private answers to application commands, whatever state the interaction is in."""

from __future__ import annotations

import logging

import discord

log = logging.getLogger(__name__)

#: Every send passes this, even though the bot's default is the same: no reply ever pings.
NO_PINGS = discord.AllowedMentions.none()


async def reply_privately(interaction: discord.Interaction, content: str) -> None:
    """An ephemeral answer: the first response if none was sent yet, else a followup."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(content, ephemeral=True, allowed_mentions=NO_PINGS)


async def report_failure(interaction: discord.Interaction, error: Exception, content: str) -> None:
    """Log an unexpected command error and still answer, so nobody sees "did not respond"."""
    command = interaction.command.qualified_name if interaction.command else "?"
    log.error("/%s failed", command, exc_info=error)
    try:
        await reply_privately(interaction, content)
    except discord.HTTPException as send_error:
        log.warning("could not tell the user that /%s failed: %s", command, send_error)
