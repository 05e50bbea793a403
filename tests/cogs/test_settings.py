"""/whymoji: managers change server settings, everyone can opt out and back in."""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace
from types import SimpleNamespace

import discord
import pytest
from discord import app_commands
from discord.ext import commands

from bot.deepmoji.emojis import EMOJIS
from bot.interactions.replies import STORE_UNAVAILABLE
from bot.store import InvalidSetting, StoreError, open_store
from bot.store.settings import checked_changes
from cogs.settings import NOT_A_MANAGER, UNKNOWN_CHANNEL, Settings, describe_settings, is_manager
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
from tests.store.support import DEFAULTS, empty_database


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
        ("cooldown", 86_400.5),
        ("cooldown", 1e12),
        ("cooldown", 1e308),
        ("cooldown", math.inf),
        ("cooldown", math.nan),
        ("threshold", math.nan),
        ("modthreshold", -math.inf),
        ("topk", 2.5),
        ("chance", True),
    ],
)
async def test_out_of_range_values_are_refused_clearly(name, value):
    """Whatever a client sends: Discord does not enforce the declared ranges."""
    bot = make_bot()
    before = bot.store.settings
    content = await run(bot, name, make_interaction(manager=True), value)
    assert content.startswith("Not changed:")
    assert bot.store.settings == before and bot.dispatched == []


@pytest.mark.parametrize(("name", "value"), [("cooldown", 0.0), ("cooldown", 86_400.0)])
async def test_the_declared_ends_of_a_range_are_accepted(name, value):
    bot = make_bot()
    content = await run(bot, name, make_interaction(manager=True), value)
    assert not content.startswith("Not changed") and bot.store.settings.cooldown_s == value


@pytest.mark.parametrize(
    ("name", "field", "words"),
    [
        ("threshold", "threshold", "at least 0."),
        ("modthreshold", "mod_threshold", "at least 0."),
        ("minknown", "min_known", "at least 0% of"),
        ("distress", "distress", "at least 0 get"),
        ("cooldown", "cooldown_s", "pause 0 s"),
    ],
)
async def test_minus_zero_is_stored_and_confirmed_as_zero(name, field, words):
    bot = make_bot()
    content = await run(bot, name, make_interaction(manager=True), -0.0)
    assert words in content and "-0" not in content
    stored = getattr(bot.store.settings, field)
    assert stored == 0 and math.copysign(1, stored) == 1
    assert "-0" not in describe_settings(bot.store.settings)


def test_every_declared_range_is_the_stores_rule():
    """The ranges Discord shows are the rules the store (and the config) enforce: each end is
    accepted and a step beyond it refused."""
    fields = {
        "topk": "top_k",
        "threshold": "threshold",
        "cooldown": "cooldown_s",
        "minknown": "min_known",
        "distress": "distress",
        "chance": "chance",
        "modthreshold": "mod_threshold",
    }
    group = {command.name: command for command in Settings(make_bot()).walk_app_commands()}
    for name, field in fields.items():
        (parameter,) = group[name].parameters
        low, high = parameter.min_value, parameter.max_value
        assert low is not None and high is not None, name
        for end in (low, high):
            assert checked_changes({field: end}) == {field: end}
        step = 1 if isinstance(high, int) and not isinstance(high, float) else 1e-9
        for beyond in (low - step, high + step):
            with pytest.raises(InvalidSetting):
                checked_changes({field: beyond})


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


BOT_ID, MODS, HELPERS, ADMINS, BOTS_ROLE, MEMBER = 1, 1001, 1002, 1003, 1004, 77
VIEW = {"view_channel": True}


def role_data(role_id: int, name: str, position: int, **permissions: bool) -> dict:
    return {
        "id": str(role_id),
        "name": name,
        "permissions": str(discord.Permissions(**permissions).value),
        "position": position,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
    }


def overwrite(target: int, kind: int, allow: dict | None = None, deny: dict | None = None) -> dict:
    """A channel permission overwrite for a role (``kind`` 0) or a member (1)."""
    return {
        "id": str(target),
        "type": kind,
        "allow": str(discord.Permissions(**(allow or {})).value),
        "deny": str(discord.Permissions(**(deny or {})).value),
    }


def real_mod_channel(*overwrites: dict, everyone: dict | None = None) -> discord.TextChannel:
    """A real discord.py server (as the gateway describes it) with roles Mods (Manage Server),
    Helpers (Manage Messages only), Admins (Administrator) and the bot's own role, and a channel
    ``MOD_CHANNEL_ID`` with ``overwrites``; discord.py computes every permission."""
    state = discord.state.ConnectionState(
        dispatch=lambda *args: None, handlers={}, hooks={}, http=None, intents=discord.Intents.none()
    )
    user = {"id": str(BOT_ID), "username": "whymoji", "discriminator": "0", "avatar": None, "bot": True}
    state.user = discord.ClientUser(state=state, data=user)
    guild = discord.Guild(
        state=state,
        data={
            "id": str(GUILD_ID),
            "name": "server",
            "owner_id": "9",
            "roles": [
                role_data(GUILD_ID, "@everyone", 0, **(everyone or {"view_channel": True, "send_messages": True})),
                role_data(HELPERS, "Helpers", 1, manage_messages=True),
                role_data(MODS, "Mods", 2, manage_guild=True),
                role_data(ADMINS, "Admins", 3, administrator=True),
                role_data(BOTS_ROLE, "whymoji", 4, view_channel=True, send_messages=True, read_message_history=True)
                | {"managed": True, "tags": {"bot_id": str(BOT_ID)}},
            ],
            "channels": [
                {
                    "id": str(MOD_CHANNEL_ID),
                    "type": 0,
                    "name": "mods",
                    "position": 0,
                    "permission_overwrites": list(overwrites),
                }
            ],
            "members": [
                {
                    "user": user,
                    "roles": [str(BOTS_ROLE)],
                    "joined_at": "2024-01-01T00:00:00+00:00",
                    "deaf": False,
                    "mute": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
        },
    )
    return guild.get_channel(MOD_CHANNEL_ID)


async def set_mod_channel(channel: discord.TextChannel | None, guild: discord.Guild | None = None) -> str:
    bot = make_bot()
    interaction = make_interaction(guild=guild or channel.guild, channel=FakeChannel(), manager=True)
    content = await run(bot, "modchannel", interaction, channel)
    assert bot.store.settings.mod_channel_id == (channel.id if channel else None)
    assert bot.dispatched == [("whymoji_settings_changed", GUILD_ID)]
    return content


#: A moderators' channel as it should be: hidden from @everyone, open to Mods and the bot.
ONLY_MODS = overwrite(GUILD_ID, 0, deny=VIEW), overwrite(MODS, 0, allow=VIEW), overwrite(BOTS_ROLE, 0, allow=VIEW)


async def test_modchannel_set_and_off():
    channel = real_mod_channel(*ONLY_MODS[:2], overwrite(BOTS_ROLE, 0, allow=VIEW, deny={"send_messages": True}))
    content = await set_mod_channel(channel)
    assert content.startswith(f"Moderator hints will go to <#{MOD_CHANNEL_ID}>. I can't post there yet")
    assert "Send Messages" in content and "Careful" not in content
    assert await set_mod_channel(None, channel.guild) == "Moderator hints are off."


@pytest.mark.parametrize(
    "overwrites",
    [
        ONLY_MODS,
        (*ONLY_MODS, overwrite(ADMINS, 0, allow=VIEW)),  # Administrator: a moderator too
        (*ONLY_MODS, overwrite(BOT_ID, 1, allow=VIEW)),  # the bot itself
        (*ONLY_MODS, overwrite(MEMBER, 1, deny=VIEW)),  # a member shut out
    ],
)
async def test_a_channel_only_moderators_can_read_gets_no_warning(overwrites):
    content = await set_mod_channel(real_mod_channel(*overwrites))
    assert content == f"Moderator hints will go to <#{MOD_CHANNEL_ID}>."


async def test_a_channel_everyone_can_read_is_named_so():
    content = await set_mod_channel(real_mod_channel(overwrite(MODS, 0, allow=VIEW)))
    assert content.startswith(f"Moderator hints will go to <#{MOD_CHANNEL_ID}>. Careful: hints quote the messages")
    assert "members who are not moderators (moderators: members with Manage Server or Administrator)" in content
    assert content.endswith(": everyone. Let only moderators view it, or pick another channel.")


async def test_roles_and_members_without_manage_server_who_can_read_are_listed():
    channel = real_mod_channel(*ONLY_MODS, overwrite(HELPERS, 0, allow=VIEW), overwrite(MEMBER, 1, allow=VIEW))
    content = await set_mod_channel(channel)
    assert content.endswith(f": <@&{HELPERS}>, <@{MEMBER}>. Let only moderators view it, or pick another channel.")


async def test_a_server_whose_everyone_role_has_manage_server_has_only_moderators():
    content = await set_mod_channel(real_mod_channel(everyone={"view_channel": True, "manage_guild": True}))
    assert "Careful" not in content


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
    assert bot.store.changes == [
        ("blocked", GUILD_ID, {42, 51, 44, 8}, set()),
        ("blocked", GUILD_ID, set(), {42, 8}),
        ("blocked", GUILD_ID, set(), {44, 51}),
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
    content = await run(bot, "block", make_interaction(manager=True), " ".join(f"w{n}" * 4 for n in range(30)))
    assert "and 20 more" in content and len(content) < 2000


@pytest.mark.parametrize("name", ["block", "unblock"])
async def test_more_than_the_declared_400_characters_are_refused(name):
    """Discord declares the option's length but does not enforce it on what a client sends."""
    bot = make_bot()
    content = await run(bot, name, make_interaction(manager=True), "💀" * 401)
    assert content == "Not changed: name the emojis in at most 400 characters."
    assert bot.store.changes == [] and bot.dispatched == []


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


# -- two managers at once: no lost updates, and each answer says what is now true -------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request, tmp_path):
    async with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.mark.parametrize("processes", [1, 2])
async def test_two_managers_blocking_different_emojis_at_once_both_land(database_url, processes):
    """Each round, two managers block a different emoji at the same moment, through one bot or
    two bots (processes) sharing the database: both emojis end up blocked, and each answer's
    "never placed now" list holds its own emoji."""
    stores = [await open_store(database_url, DEFAULTS) for _ in range(processes)]
    bots = []
    for store in stores * (3 - processes):
        bot = make_bot()
        bot.store = store
        bots.append(bot)
    try:
        for first, second in [(8, 51), (42, 3), (10, 20), (0, 63), (30, 31)] * 2:
            await stores[0].update_guild(GUILD_ID, blocked=frozenset())
            replies = await asyncio.gather(
                run(bots[0], "block", make_interaction(manager=True), EMOJIS[first].reaction),
                run(bots[1], "block", make_interaction(manager=True), EMOJIS[second].reaction),
            )
            assert (await stores[-1].get_guild(GUILD_ID)).blocked == {first, second}
            for index, reply in zip((first, second), replies, strict=True):
                assert reply.startswith(f"Blocked: {EMOJIS[index].reaction}.")
                assert EMOJIS[index].reaction in reply.split("Never placed now:")[1]
    finally:
        for store in stores:
            await store.close()


@pytest.mark.parametrize("name", ["modchannel", "enable", "disable"])
async def test_a_channel_that_cannot_be_resolved_is_named_unknown_without_a_traceback(name, caplog):
    """discord.py cannot resolve a channel Discord sent (deleted meanwhile, not in the cache, or
    of a kind the option does not take): the user is told so, not to try again later."""
    cog = Settings(make_bot())
    command = next(c for c in cog.walk_app_commands() if c.name == name)
    interaction = make_interaction(manager=True)
    interaction.command = command
    # What discord.py builds from the interaction's "resolved" data, in a cache without that channel.
    sent = discord.app_commands.AppCommandChannel(
        state=SimpleNamespace(_get_guild=lambda guild_id: None),
        data={"id": "424242", "type": 0, "name": "gone", "permissions": "0"},
        guild_id=GUILD_ID,
    )
    with pytest.raises(app_commands.TransformerError) as raised:
        await command._params["channel"].transform(interaction, sent)  # what discord.py runs first
    error = raised.value
    caplog.set_level(logging.DEBUG)
    await cog.cog_app_command_error(interaction, error)
    (answer,) = answers(interaction)
    assert answer["content"] == UNKNOWN_CHANNEL and answer["ephemeral"] is True
    assert "try again" not in answer["content"]
    assert not [record for record in caplog.records if record.exc_info or record.levelno >= logging.WARNING]
