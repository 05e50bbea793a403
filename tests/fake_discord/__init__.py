"""A fake Discord (REST + gateway) for end-to-end tests of the real bot.

See :class:`FakeDiscord`; the pieces are ``world`` (users, guilds, messages and their
payloads), ``gateway`` (sessions, resume and replay), ``rest`` (the routes, rate limits and
errors) and ``interactions`` (registered commands and the interactions built from them).
"""

from .interactions import CommandNotRegistered, InteractionRecord
from .server import FakeDiscord
from .world import Channel, Guild, Message, User

__all__ = [
    "Channel",
    "CommandNotRegistered",
    "FakeDiscord",
    "Guild",
    "InteractionRecord",
    "Message",
    "User",
]
