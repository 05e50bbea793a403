"""/whymoji: managers change server settings, everyone can opt out and back in."""

from __future__ import annotations

import logging
from dataclasses import replace

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.replies import STORE_UNAVAILABLE
from bot.store import StoreError
from cogs.settings import NOT_A_MANAGER, Settings, describe_settings, is_manager
from tests.cog_fakes import (
    ASKER_ID,
    CHANNEL_ID,
    GUILD_ID,
    MOD_CHANNEL_ID,
    FakeChannel,
    FakeGuild,
    answers,
    make_bot,
    make_interaction,
)


async def run(bot, name, interaction, *args):
    cog = Settings(bot)
    command = next(c for c in cog.walk_app_commands() if c.name == name)
    await command.callback(cog, interaction, *args)
    (answer,) = answers(interaction)
    assert answer["ephemeral"] is True
    assert answer["allowed_mentions"].to_dict() == {"parse": []}
    return answer["content"]


def test_is_manager():
    assert is_manager(discord.Permissions(manage_guild=True))
    assert is_manager(discord.Permissions(administrator=True))
    assert not is_manager(discord.Permissions(send_messages=True, manage_messages=True))


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("enable", (None,)),
        ("disable", (None,)),
        ("topk", (5,)),
        ("threshold", (0.2,)),
        ("cooldown", (10.0,)),
        ("modthreshold", (0.7,)),
        ("modchannel", (None,)),
        ("show", ()),
        ("minknown", (0.7,)),
        ("block", ("💀",)),
        ("unblock", ("🔫",)),
        ("distress", (0.3,)),
        ("chance", (50,)),
    ],
)
async def test_server_settings_need_manage_server(name, args):
    bot = make_bot()
    content = await run(bot, name, make_interaction(manager=False), *args)
    assert content == NOT_A_MANAGER
    assert bot.store.changes == [] and bot.dispatched == []


@pytest.mark.parametrize(
    ("name", "value", "field", "words"),
    [
        ("topk", 5, "top_k", "up to 5 emojis"),
        ("threshold", 0.25, "threshold", "at least 0.25"),
        ("cooldown", 12.5, "cooldown_s", "12.5 s"),
        ("modthreshold", 0.8, "mod_threshold", "at least 0.8"),
        ("minknown", 0.75, "min_known", "at least 75% of a message's words"),
        ("distress", 0.3, "distress", "distress score of at least 0.3 get no reactions"),
        ("distress", 1.0, "distress", "Distress silence is off"),
        ("chance", 25, "chance", "react to 25% of messages"),
        ("chance", 0, "chance", "react to 0% of messages"),
    ],
)
async def test_manager_changes_a_value(name, value, field, words):
    bot = make_bot()
    content = await run(bot, name, make_interaction(manager=True), value)
    assert words in content
    assert getattr(bot.store.settings, field) == value
    assert bot.dispatched == [("whymoji_settings_changed", GUILD_ID)]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("topk", 0),
        ("topk", 11),
        ("threshold", 1.5),
        ("cooldown", -1.0),
        ("minknown", 1.1),
        ("distress", -0.5),
        ("chance", 101),
        ("chance", -1),
    ],
)
async def test_out_of_range_values_are_refused_clearly(name, value):
    bot = make_bot()
    before = bot.store.settings
    content = await run(bot, name, make_interaction(manager=True), value)
    assert content.startswith("Not changed:")
    assert bot.store.settings == before and bot.dispatched == []


async def test_enable_and_disable_default_to_this_channel_and_warn_about_permissions():
    bot = make_bot(enabled_channels=frozenset())
    guild = FakeGuild()
    here = FakeChannel(id=CHANNEL_ID)
    guild.channels[CHANNEL_ID] = here
    content = await run(bot, "enable", make_interaction(guild=guild, manager=True), None)
    assert content == f"Reactions are on in <#{CHANNEL_ID}>."
    assert bot.store.settings.enabled_channels == {CHANNEL_ID}
    other = FakeChannel(id=77, denied={guild.me.id: {"add_reactions"}})
    content = await run(bot, "enable", make_interaction(guild=guild, manager=True), other)
    assert "give me Add Reactions" in content
    assert bot.store.settings.enabled_channels == {CHANNEL_ID, 77}
    await run(bot, "disable", make_interaction(guild=guild, manager=True), None)
    assert bot.store.settings.enabled_channels == {77}
    assert bot.dispatched == [("whymoji_settings_changed", GUILD_ID)] * 3


async def test_modchannel_set_and_off():
    bot = make_bot()
    guild = FakeGuild()
    mods = FakeChannel(id=MOD_CHANNEL_ID, denied={guild.me.id: {"send_messages"}})
    content = await run(bot, "modchannel", make_interaction(guild=guild, manager=True), mods)
    assert bot.store.settings.mod_channel_id == MOD_CHANNEL_ID
    assert f"<#{MOD_CHANNEL_ID}>" in content and "Send Messages" in content
    content = await run(bot, "modchannel", make_interaction(guild=guild, manager=True), None)
    assert content == "Moderator hints are off." and bot.store.settings.mod_channel_id is None


async def test_show_lists_every_setting():
    bot = make_bot(enabled_channels=frozenset({5, 6}), top_k=4, mod_channel_id=MOD_CHANNEL_ID, chance=40)
    content = await run(bot, "show", make_interaction(manager=True))
    assert content == describe_settings(bot.store.settings)
    expected_lines = (
        "<#5>, <#6>",
        "(topk): 4",
        "(threshold): 0.1",
        f"<#{MOD_CHANNEL_ID}>",
        "(modthreshold): 0.5",
        "(minknown): 0.5",
        "(block, unblock): 🔫",
        "(distress): 0.5",
        "(chance): 40%",
    )
    for expected in expected_lines:
        assert expected in content
    bot.store.settings = replace(bot.store.settings, blocked=frozenset(), distress=1.0)
    content = await run(bot, "show", make_interaction(manager=True))
    assert "(block, unblock): none" in content and "(distress): off" in content


async def test_block_adds_to_the_list_in_any_spelling_and_unblock_removes():
    bot = make_bot()
    content = await run(bot, "block", make_interaction(manager=True), "💀,😈  ❤\ufe0f🔫")
    assert bot.store.settings.blocked == {42, 51, 44, 8}
    assert content == "Blocked: ❤️ 🔫 😈 💀. Never placed now: ❤️ 🔫 😈 💀."
    content = await run(bot, "unblock", make_interaction(manager=True), "🔫 ❤")
    assert bot.store.settings.blocked == {51, 44}
    assert content == "Unblocked: ❤️ 🔫. Never placed now: 😈 💀."
    await run(bot, "unblock", make_interaction(manager=True), "😈💀")
    assert bot.store.settings.blocked == frozenset()
    assert [change[2] for change in bot.store.changes] == [
        {"blocked": {42, 51, 44, 8}},
        {"blocked": {51, 44}},
        {"blocked": frozenset()},
    ]
    assert bot.dispatched == [("whymoji_settings_changed", GUILD_ID)] * 3


@pytest.mark.parametrize("name", ["block", "unblock"])
async def test_anything_not_understood_changes_nothing_and_is_listed_back(name):
    bot = make_bot()
    before = bot.store.settings
    content = await run(bot, name, make_interaction(manager=True), "💀 gun <:pepe:123> **x**")
    assert content.startswith("Not changed: these are not emojis I react with: gun, <:pepe:123>, \\*\\*x\\*\\*.")
    assert "😂 😒 😩" in content  # the 64 it can name
    assert bot.store.settings == before and bot.store.changes == [] and bot.dispatched == []


async def test_a_long_refusal_is_shortened():
    bot = make_bot()
    content = await run(bot, "block", make_interaction(manager=True), " ".join(f"w{n}" * 30 for n in range(30)))
    assert "and 20 more" in content and len(content) < 2000


async def test_block_with_only_separators_asks_for_emojis():
    bot = make_bot()
    content = await run(bot, "block", make_interaction(manager=True), " , ")
    assert content.startswith("Not changed: name one or more emojis.") and bot.store.changes == []


async def test_everyone_can_opt_out_and_back_in():
    bot = make_bot()
    content = await run(bot, "optout", make_interaction(manager=False))
    assert "opted out" in content and await bot.store.is_opted_out(ASKER_ID)
    content = await run(bot, "optin", make_interaction(manager=False))
    assert "opted in" in content and not await bot.store.is_opted_out(ASKER_ID)


async def test_store_failure_gets_an_answer():
    bot = make_bot()
    interaction = make_interaction(manager=True)
    await Settings(bot).cog_app_command_error(interaction, discord.app_commands.AppCommandError("db down"))
    (answer,) = answers(interaction)
    assert "try again" in answer["content"] and answer["ephemeral"] is True


async def test_group_shape_on_a_real_bot():
    bot = commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.none())
    await bot.add_cog(Settings(bot))
    group = bot.tree.get_command("whymoji")
    assert group.guild_only and group.default_permissions is None  # optout must stay visible
    assert {c.name for c in group.commands} == {
        "enable",
        "disable",
        "topk",
        "threshold",
        "cooldown",
        "modchannel",
        "modthreshold",
        "show",
        "optout",
        "optin",
        "minknown",
        "block",
        "unblock",
        "distress",
        "chance",
    }
    topk = group.get_command("topk")
    assert (topk.parameters[0].min_value, topk.parameters[0].max_value) == (1, 10)
    chance = group.get_command("chance")
    assert (chance.parameters[0].min_value, chance.parameters[0].max_value) == (0, 100)
    for fraction in ("minknown", "distress"):
        value = group.get_command(fraction).parameters[0]
        assert (value.min_value, value.max_value) == (0.0, 1.0)


PRIVATE_DEFERRAL = {"thinking": True, "ephemeral": True}


@pytest.mark.parametrize(
    ("name", "args", "manager"),
    [
        ("enable", (None,), True),
        ("disable", (None,), True),
        ("topk", (5,), True),
        ("threshold", (0.2,), True),
        ("cooldown", (10.0,), True),
        ("modthreshold", (0.7,), True),
        ("minknown", (0.3,), True),
        ("distress", (0.8,), True),
        ("chance", (50,), True),
        ("block", ("🔫",), True),
        ("unblock", ("🔫",), True),
        ("modchannel", (None,), True),
        ("show", (), True),
        ("optout", (), False),
        ("optin", (), False),
    ],
)
async def test_the_store_is_only_used_after_a_private_deferral(name, args, manager):
    """A slow database must not cost the interaction: Discord wants a first answer within 3 s."""
    bot = make_bot()
    interaction = make_interaction(manager=manager)
    deferred_at_each_store_call = []
    bot.store._answer = lambda: deferred_at_each_store_call.append(interaction.response.deferred)
    await run(bot, name, interaction, *args)
    assert deferred_at_each_store_call and all(d == PRIVATE_DEFERRAL for d in deferred_at_each_store_call)


async def test_a_store_outage_is_answered_plainly_and_logged_once(caplog):
    bot = make_bot()
    cog = Settings(bot)
    topk = next(c for c in cog.walk_app_commands() if c.name == "topk")
    outage = StoreError("PostgreSQL db:5432: TimeoutError")
    caplog.set_level(logging.DEBUG)
    interactions = [make_interaction(manager=True) for _ in range(3)]
    for interaction in interactions:
        await cog.cog_app_command_error(interaction, app_commands.CommandInvokeError(topk, outage))
    for interaction in interactions:
        (answer,) = answers(interaction)
        assert answer["content"] == STORE_UNAVAILABLE and answer["ephemeral"] is True
    lines = [record for record in caplog.records if "TimeoutError" in record.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
