"""A fake Discord (REST + gateway) for end-to-end tests of the real bot.

    async with FakeDiscord() as fake, connected(client, fake):   # fake_discord.client
        message = await fake.send_message(fake.general, fake.alice, "i love you")
        await fake.wait_for(lambda: message.reactions, 10, "a reaction")
        answer = await fake.slash(fake.moderator, fake.general, "whymoji enable")
        await fake.wait_for(lambda: answer.answered, 10, "the answer")
        pick = await fake.pick(fake.alice, answer.original, custom_id, value)   # a select menu

See :class:`FakeDiscord`; the pieces are ``world`` (users, guilds, messages and their
payloads), ``gateway`` (sessions, resume and replay), ``rest`` (the routes, rate limits and
errors), ``interactions`` (registered commands and the interactions built from them),
``client`` (discord.py pointed at the fake, a client run against it) and ``whymoji`` (the
real bot's config and start/stop against the fake).
"""

from .interactions import CommandNotRegistered, ComponentNotFound, InteractionRecord
from .server import FakeDiscord
from .world import Channel, Guild, Message, Overwrite, Role, User

__all__ = [
    "Channel",
    "CommandNotRegistered",
    "ComponentNotFound",
    "FakeDiscord",
    "Guild",
    "InteractionRecord",
    "Message",
    "Overwrite",
    "Role",
    "User",
]
