"""Moderation hints: scored from the shared prediction, posted without pinging, never acting."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import discord
import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.explain.explanation import Explanation, WordScore
from bot.interactions.picks import ExplanationMenu, Subject
from bot.rules.hostility import HOSTILE_CLASSES
from bot.serving.worker import ModelError, Overloaded
from bot.store import StoreError
from cogs.moderation import Moderation, format_hint, hint_header
from cogs.reactions import Reactions
from tests.cog_fakes import (
    AUTHOR_ID,
    CHANNEL_ID,
    MOD_CHANNEL_ID,
    FakeChannel,
    FakeGuild,
    FakeMessage,
    counter,
    http_error,
    make_bot,
    probabilities,
)

HOSTILE = probabilities(*HOSTILE_CLASSES[:3], mass=0.9)
FRIENDLY = probabilities(0, 4, 8, mass=0.9)


def setup(row=HOSTILE, **settings):
    settings.setdefault("mod_channel_id", MOD_CHANNEL_ID)
    bot = make_bot(**settings)
    bot.worker.row = row
    guild = FakeGuild()
    guild.channels = {CHANNEL_ID: FakeChannel(id=CHANNEL_ID), MOD_CHANNEL_ID: FakeChannel(id=MOD_CHANNEL_ID)}
    return bot, guild, guild.channels[MOD_CHANNEL_ID]


def message_in(guild, content="you are an idiot", channel_id=CHANNEL_ID, **fields):
    channel = guild.channels.setdefault(channel_id, FakeChannel(id=channel_id))
    return FakeMessage(content, guild=guild, channel=channel, **fields)


def test_hint_layout():
    link = "https://discord.com/channels/1/8/9"
    header = hint_header(author_id=7, channel_id=8, jump_url=link, score=0.876)
    assert header.startswith("⚠️") and "<@7>" in header and "<#8>" in header and "0.88" in header
    assert format_hint(header, "EXPLAINED").endswith("\nEXPLAINED")
    assert "no explanation" in format_hint(header, None)


async def test_hostile_message_gets_a_hint_without_pings():
    bot, guild, mod_channel = setup()
    message = message_in(guild)
    await Moderation(bot).on_message(message)
    (hint,) = mod_channel.sent
    assert f"<@{AUTHOR_ID}>" in hint["content"] and message.jump_url in hint["content"]
    assert hint["allowed_mentions"].to_dict() == {"parse": []}
    assert len(hint["content"]) <= 2000
    assert bot.worker.explained == ["you are an idiot"]
    assert counter(bot.metrics.hints_posted) == 1
    assert message.reactions == []  # hints, not actions


async def test_long_messages_still_fit_in_one_discord_message():
    bot, guild, mod_channel = setup()
    await Moderation(bot).on_message(message_in(guild, "idiot " * 500))
    (hint,) = mod_channel.sent
    assert len(hint["content"]) <= 2000


async def test_friendly_message_gets_no_hint():
    bot, guild, mod_channel = setup(row=FRIENDLY)
    await Moderation(bot).on_message(message_in(guild))
    assert mod_channel.sent == [] and bot.worker.explained == []


async def test_server_threshold_decides():
    bot, guild, mod_channel = setup(mod_threshold=0.95)
    await Moderation(bot).on_message(message_in(guild))
    assert mod_channel.sent == []


async def test_hints_are_off_until_a_mod_channel_is_set():
    bot, guild, mod_channel = setup(mod_channel_id=None)
    await Moderation(bot).on_message(message_in(guild))
    assert mod_channel.sent == [] and bot.worker.predicted == []


async def test_any_readable_channel_counts_not_only_reaction_channels():
    bot, guild, mod_channel = setup(enabled_channels=frozenset())
    await Moderation(bot).on_message(message_in(guild, channel_id=4242))
    assert len(mod_channel.sent) == 1


async def test_skipped_authors_and_the_mod_channel_itself():
    bot, guild, mod_channel = setup()
    cog = Moderation(bot)
    robot = message_in(guild)
    robot.author.bot = True
    await cog.on_message(robot)
    await cog.on_message(message_in(guild, channel_id=MOD_CHANNEL_ID))
    bot.store.opted_out.add(AUTHOR_ID)
    await cog.on_message(message_in(guild))
    assert mod_channel.sent == [] and bot.worker.predicted == []


async def test_cooldown_per_user_and_channel():
    bot, guild, mod_channel = setup()
    cog = Moderation(bot)
    await cog.on_message(message_in(guild, id=1))
    await cog.on_message(message_in(guild, id=2))  # same user, same channel: cooling down
    await cog.on_message(message_in(guild, id=3, channel_id=4242))  # another channel
    other = message_in(guild, id=4)
    other.author.id = AUTHOR_ID + 1
    await cog.on_message(other)  # another user
    assert len(mod_channel.sent) == 3


async def test_reactions_and_hints_share_one_prediction():
    bot, guild, mod_channel = setup()
    message = message_in(guild)
    reactions, moderation = Reactions(bot), Moderation(bot)
    assert reactions.predictions is moderation.predictions is bot.predictions
    await asyncio.gather(reactions.on_message(message), moderation.on_message(message))
    assert bot.worker.predicted == ["you are an idiot"]
    assert message.reactions and len(mod_channel.sent) == 1


async def test_overloaded_prediction_is_skipped_quietly():
    bot, guild, mod_channel = setup()
    bot.worker.error = Overloaded("busy")
    await Moderation(bot).on_message(message_in(guild))
    assert mod_channel.sent == []


async def test_failed_explanation_still_posts_the_score():
    bot, guild, mod_channel = setup()
    bot.worker.explain_error = Overloaded("busy")
    await Moderation(bot).on_message(message_in(guild))
    (hint,) = mod_channel.sent
    assert "no explanation" in hint["content"]


@pytest.mark.parametrize("problem", ["missing", "forbidden"])
async def test_unusable_mod_channel_is_logged_once(problem, caplog):
    bot, guild, mod_channel = setup()
    if problem == "missing":
        del guild.channels[MOD_CHANNEL_ID]
    else:
        mod_channel.send_error = http_error(discord.Forbidden, 403, 50013)
    cog = Moderation(bot)
    await cog.on_message(message_in(guild, id=1))
    other = message_in(guild, id=2)
    other.author.id = AUTHOR_ID + 1
    await cog.on_message(other)
    assert counter(bot.metrics.hints_posted) == 0
    assert sum("unusable" in record.getMessage() for record in caplog.records) == 1
    assert counter(bot.metrics.hints_shed, reason="channel_unusable") == 2


async def test_a_store_outage_is_counted_and_logged_once(caplog):
    bot, guild, _mod_channel = setup()
    bot.store.error = StoreError("SQLite database x was deleted")
    cog = Moderation(bot)
    for number in range(3):
        await cog.on_message(message_in(guild, id=number))
    assert counter(bot.metrics.hints_shed, reason="store_unavailable") == 3
    assert sum("was deleted" in record.getMessage() for record in caplog.records) == 1


@pytest.mark.parametrize(
    ("error", "reason"),
    [(Overloaded("busy"), "overload"), (ModelError("the model failed (MemoryError)"), "model_error")],
)
async def test_a_message_the_model_could_not_score_is_counted(error, reason):
    bot, guild, mod_channel = setup()
    bot.worker.error = error
    await Moderation(bot).on_message(message_in(guild))
    assert mod_channel.sent == [] and counter(bot.metrics.hints_shed, reason=reason) == 1


async def test_a_hints_explanation_takes_one_of_the_servers_places():
    bot, guild, mod_channel = setup()
    limits = bot.explanation_limits
    with limits.slot(guild.id, 1), limits.slot(guild.id, 2), limits.slot(guild.id, 3):  # /why uses them all
        await Moderation(bot).on_message(message_in(guild))
    (hint,) = mod_channel.sent
    assert "no explanation" in hint["content"] and bot.worker.explained == []
    await Moderation(bot).on_message(message_in(guild, id=2, channel_id=4242))
    assert bot.worker.explained == ["you are an idiot"]  # a place is free again


async def test_a_hint_that_cannot_be_posted_is_counted():
    bot, guild, mod_channel = setup()
    mod_channel.send_error = discord.RateLimited(120.0)  # not an HTTPException
    await Moderation(bot).on_message(message_in(guild))
    assert counter(bot.metrics.hints_shed, reason="post_failed") == 1


async def test_hints_use_the_readability_gate():
    bot, guild, mod_channel = setup()
    await Moderation(bot).on_message(message_in(guild, "你是个白痴 idiot", id=1))  # 1 of 6 words known
    assert mod_channel.sent == [] and bot.worker.predicted == []
    bot.store.settings = replace(bot.store.settings, min_known=0.0)
    await Moderation(bot).on_message(message_in(guild, "你是个白痴 idiot", id=2))
    assert len(mod_channel.sent) == 1


def explorable(text: str):
    """An explanation with each word's effects, as ``explain`` makes with occlusion."""
    top = tuple((EMOJIS[index], 0.1) for index in HOSTILE_CLASSES[:5])
    words = tuple(
        WordScore(word, 0, len(word), 0.1, True, (0.02,) * 5, top) for word in text.split()
    )  # spans need not be right here
    return Explanation(text, words, top, "occlusion")


async def test_a_hints_explanation_has_the_why_menus_and_is_kept_for_picks():
    bot, guild, mod_channel = setup()

    async def explain(text):
        bot.worker.explained.append(text)
        return explorable(text)

    bot.worker.explain = explain
    message = message_in(guild)
    await Moderation(bot).on_message(message)
    (hint,) = mod_channel.sent
    items = hint["view"].children
    assert [type(item) for item in items] == [ExplanationMenu, ExplanationMenu]
    subject = Subject.message(guild.id, CHANNEL_ID, message.id)
    assert all(item.subject == subject and not item.private for item in items)  # picks answered privately
    assert bot.kept_explanations.get(subject) == explorable("you are an idiot")


async def test_a_hint_without_an_explanation_has_no_menus():
    bot, guild, mod_channel = setup()
    bot.worker.explain_error = Overloaded("busy")
    await Moderation(bot).on_message(message_in(guild))
    (hint,) = mod_channel.sent
    assert "view" not in hint and len(bot.kept_explanations) == 0


async def test_a_message_beyond_those_under_way_is_counted_not_checked():
    bot, guild, mod_channel = setup()
    bot.predictions.max_in_flight = 1
    with bot.predictions.handle(1):  # another message under way
        await Moderation(bot).on_message(message_in(guild, id=2))
    assert mod_channel.sent == [] and bot.worker.predicted == []
    assert counter(bot.metrics.hints_shed, reason="overload") == 1
