"""Which Discord messages the bot's features read at all."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import discord


def is_candidate(message: discord.Message) -> bool:
    """Ordinary messages by people in servers: no DMs, bots, webhooks or system messages."""
    return (
        message.guild is not None and not message.author.bot and message.webhook_id is None and not message.is_system()
    )
