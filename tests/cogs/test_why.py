"""/why and the "Why these emojis?" message command, with light fakes."""

from __future__ import annotations

import asyncio
import logging

import discord
import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.errors import WhymojiError
from bot.explain.explanation import Explanation, WordScore
from bot.interactions.picks import ALL_FIVE, ExplanationMenu, Menu, Pick, Subject
from bot.interactions.replies import STORE_UNAVAILABLE
from bot.rules.explanation_limits import ExplanationLimits
from bot.serving.worker import Overloaded
from bot.store import StoreError
from cogs.why import CHANGED, CONTEXT_MENU_NAME, MessageRef, Why, parse_target
from tests.cog_fakes import (
    ASKER_ID,
    AUTHOR_ID,
    CHANNEL_ID,
    GUILD_ID,
    FakeChannel,
    FakeGuild,
    FakeMessage,
    answers,
    counter,
    http_error,
    make_bot,
    make_interaction,
)

MESSAGE_ID = 123456789012345678
OTHER_CHANNEL_ID = 2001
LINK = f"https://discord.com/channels/1/2/{MESSAGE_ID}"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (f"https://discord.com/channels/1/2/{MESSAGE_ID}", MessageRef(MESSAGE_ID, 2, 1)),
        (f"https://ptb.discord.com/channels/1/2/{MESSAGE_ID}", MessageRef(MESSAGE_ID, 2, 1)),
        (f"https://canary.discordapp.com/channels/1/2/{MESSAGE_ID}", MessageRef(MESSAGE_ID, 2, 1)),
        (f"<https://discord.com/channels/1/2/{MESSAGE_ID}>", MessageRef(MESSAGE_ID, 2, 1)),
        (f"https://discord.com/channels/@me/2/{MESSAGE_ID}", MessageRef(MESSAGE_ID, 2, None)),
        (f"  {MESSAGE_ID} ", MessageRef(MESSAGE_ID)),
        ("I love you", "I love you"),
        ("12345", "12345"),  # too short for a message ID: text
        (f"see {LINK} lol", f"see {LINK} lol"),  # a link inside text is text
        ("https://example.com/channels/1/2/3", "https://example.com/channels/1/2/3"),
    ],
)
def test_parse_target(target, expected):
    assert parse_target(target) == expected


def setup_guild(*messages: FakeMessage) -> FakeGuild:
    guild = FakeGuild()
    here, there = FakeChannel(id=CHANNEL_ID), FakeChannel(id=OTHER_CHANNEL_ID)
    guild.channels = {CHANNEL_ID: here, OTHER_CHANNEL_ID: there}
    for message in messages:
        guild.channels[message.channel.id].messages[message.id] = message
    return guild


async def ask(bot, interaction, target, public=False):
    cog = Why(bot)
    await cog.why.callback(cog, interaction, target, public)


def only_answer(interaction) -> dict:
    (answer,) = answers(interaction)
    assert isinstance(answer["ephemeral"], bool)
    assert isinstance(answer["allowed_mentions"], discord.AllowedMentions)
    assert answer["allowed_mentions"].to_dict() == {"parse": []}
    return answer


async def test_free_text_is_explained_privately_after_deferring():
    bot = make_bot()
    interaction = make_interaction()
    await ask(bot, interaction, "**so happy** <@1>")
    assert interaction.response.deferred == PRIVATE_DEFERRAL
    assert bot.worker.explained == ["so happy @user"]
    answer = only_answer(interaction)
    assert answer["ephemeral"] is True and "so" in answer["content"] and len(answer["content"]) <= 2000
    assert counter(bot.metrics.why_requests) == 1


async def test_public_answer():
    bot = make_bot()
    interaction = make_interaction()
    await ask(bot, interaction, "so happy", public=True)
    assert interaction.response.deferred["ephemeral"] is False
    assert only_answer(interaction)["ephemeral"] is False


async def test_message_id_in_this_channel():
    message = FakeMessage("I hate mondays", id=MESSAGE_ID)
    bot, interaction = make_bot(), make_interaction(guild=setup_guild(message))
    await ask(bot, interaction, str(MESSAGE_ID))
    assert bot.worker.explained == ["I hate mondays"]


async def test_message_link_to_another_channel_the_asker_can_read():
    message = FakeMessage("what a day", id=MESSAGE_ID, channel=FakeChannel(id=OTHER_CHANNEL_ID))
    bot, interaction = make_bot(), make_interaction(guild=setup_guild(message))
    await ask(bot, interaction, message.jump_url)
    assert bot.worker.explained == ["what a day"]


PRIVATE_DEFERRAL = {"thinking": True, "ephemeral": True}


async def refused(bot, interaction, target, public=False) -> str:
    """Refused privately: a public request before deferring, a private one after its private deferral."""
    await ask(bot, interaction, target, public)
    answer = only_answer(interaction)
    assert answer["ephemeral"] is True
    assert interaction.response.deferred == (None if public else PRIVATE_DEFERRAL)
    assert bot.worker.explained == []
    assert counter(bot.metrics.why_requests) == 0
    return answer["content"]


async def test_link_to_a_channel_the_asker_cannot_read_is_refused():
    message = FakeMessage("secret", id=MESSAGE_ID, channel=FakeChannel(id=OTHER_CHANNEL_ID))
    guild = setup_guild(message)
    guild.channels[OTHER_CHANNEL_ID].denied[ASKER_ID] = {"read_message_history"}
    content = await refused(make_bot(), make_interaction(guild=guild), message.jump_url, public=True)
    assert "can't read that channel" in content


async def test_link_to_another_server_is_refused():
    link = f"https://discord.com/channels/{GUILD_ID + 1}/{CHANNEL_ID}/{MESSAGE_ID}"
    content = await refused(make_bot(), make_interaction(guild=setup_guild()), link)
    assert "another server" in content


async def test_unknown_channel_and_unknown_message():
    link = f"https://discord.com/channels/{GUILD_ID}/999/{MESSAGE_ID}"
    assert "can't see the channel" in await refused(make_bot(), make_interaction(guild=setup_guild()), link)
    content = await refused(make_bot(), make_interaction(guild=setup_guild()), str(MESSAGE_ID))
    assert "couldn't find that message" in content


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (http_error(discord.Forbidden, 403, 50001), "permission to read"),
        (http_error(discord.DiscordServerError, 500), "try again"),
    ],
)
async def test_fetch_failures_get_clear_replies(error, words):
    guild = setup_guild()
    guild.channels[CHANNEL_ID].fetch_error = error
    assert words in await refused(make_bot(), make_interaction(guild=guild), str(MESSAGE_ID))


async def test_opted_out_author_is_refused_for_others_but_not_for_themselves():
    message = FakeMessage("my words", id=MESSAGE_ID)
    bot = make_bot()
    bot.store.opted_out.add(AUTHOR_ID)
    content = await refused(bot, make_interaction(guild=setup_guild(message)), str(MESSAGE_ID))
    assert "opted out" in content
    own = make_interaction(user_id=AUTHOR_ID, guild=setup_guild(message))
    await ask(bot, own, str(MESSAGE_ID))
    assert bot.worker.explained == ["my words"]


@pytest.mark.parametrize("target", ["```just code```", "<t:1:R>"])
async def test_text_with_nothing_to_read_is_refused(target):
    assert "no text" in await refused(make_bot(), make_interaction(), target)


async def test_message_without_text_is_refused():
    message = FakeMessage("", id=MESSAGE_ID)  # an image-only post
    content = await refused(make_bot(), make_interaction(guild=setup_guild(message)), str(MESSAGE_ID))
    assert "no text" in content


@pytest.mark.parametrize("error", [Overloaded("busy"), WhymojiError("no known words")])
@pytest.mark.parametrize("public", [False, True])
async def test_worker_failure_after_deferring_is_answered(error, public):
    bot = make_bot()
    bot.worker.explain_error = error
    interaction = make_interaction()
    await ask(bot, interaction, "hello there", public=public)
    answer = only_answer(interaction)
    assert answer["ephemeral"] is (not public) and "couldn't explain" in answer["content"]
    assert counter(bot.metrics.why_requests) == 0


async def test_context_menu_explains_the_message_privately():
    bot = make_bot()
    message = FakeMessage("best day ever")
    interaction = make_interaction()
    await Why(bot).why_message(interaction, message)
    assert interaction.response.deferred == PRIVATE_DEFERRAL
    assert bot.worker.explained == ["best day ever"]
    bot.store.opted_out.add(AUTHOR_ID)
    second = make_interaction()
    await Why(bot).why_message(second, message)
    assert "opted out" in only_answer(second)["content"]


async def test_unexpected_errors_still_get_an_answer():
    bot = make_bot()
    interaction = make_interaction()
    await Why(bot).cog_app_command_error(interaction, discord.app_commands.AppCommandError("boom"))
    assert "went wrong" in only_answer(interaction)["content"]


async def test_context_menu_and_menus_are_registered_on_load_and_removed_on_unload():
    from discord.ext import commands

    bot = commands.Bot(command_prefix=commands.when_mentioned, intents=discord.Intents.none())
    dynamic_items = bot._connection._view_store._dynamic_items  # discord.py lists them nowhere public
    await bot.add_cog(Why(bot))
    assert bot.tree.get_command(CONTEXT_MENU_NAME, type=discord.AppCommandType.message) is not None
    assert bot.tree.get_command("why") is not None
    assert list(dynamic_items.values()) == [ExplanationMenu]  # picks in menus posted before a restart
    await bot.remove_cog("Why")
    assert bot.tree.get_command(CONTEXT_MENU_NAME, type=discord.AppCommandType.message) is None
    assert bot.tree.get_command("why") is None
    assert dynamic_items == {}


async def test_the_askers_own_channel_needs_no_permission_lookup():
    """Here Discord sends the asker's permissions with the interaction; an uncached channel
    object may not even know them."""
    message = FakeMessage("hello you", id=MESSAGE_ID)
    guild = setup_guild(message)
    guild.channels[CHANNEL_ID].denied[ASKER_ID] = {"view_channel"}
    bot = make_bot()
    await ask(bot, make_interaction(guild=guild), message.jump_url)
    assert bot.worker.explained == ["hello you"]


async def test_a_target_longer_than_discord_allows_is_refused_without_reading_it():
    bot = make_bot()
    interaction = make_interaction()
    await ask(bot, interaction, "ha" * 50_000, public=True)
    answer = only_answer(interaction)
    assert "4,000 characters" in answer["content"] and answer["ephemeral"] is True
    assert bot.worker.explained == [] and interaction.response.deferred is None


async def test_a_second_request_while_the_first_runs_is_told_one_at_a_time():
    bot = make_bot()
    gate, started = asyncio.Event(), asyncio.Event()
    explain = bot.worker.explain

    async def slow_explain(text):
        started.set()
        await gate.wait()
        return await explain(text)

    bot.worker.explain = slow_explain
    first = make_interaction()
    running = asyncio.create_task(ask(bot, first, "so happy"))
    await started.wait()
    second = make_interaction()
    await asyncio.wait_for(ask(bot, second, "so sad"), 10)  # answered at once, not after the first
    assert "one at a time" in only_answer(second)["content"] and second.response.deferred is None
    gate.set()
    await running
    assert bot.worker.explained == ["so happy"]
    third = make_interaction()
    await ask(bot, third, "so sad")  # once the first is answered, the next may come
    assert bot.worker.explained == ["so happy", "so sad"]


@pytest.mark.parametrize("public", [False, True])
async def test_a_store_outage_is_answered_privately_and_logged_once(public, caplog):
    message = FakeMessage("my words", id=MESSAGE_ID)
    bot = make_bot()
    bot.store.error = StoreError("SQLite database x was deleted")
    cog = Why(bot)
    caplog.set_level(logging.DEBUG)
    for _ in range(2):
        interaction = make_interaction(guild=setup_guild(message))
        with pytest.raises(StoreError) as raised:  # what discord.py hands to the error handler
            await cog.why.callback(cog, interaction, str(MESSAGE_ID), public)
        error = discord.app_commands.CommandInvokeError(cog.why, raised.value)
        await cog.cog_app_command_error(interaction, error)
        answer = only_answer(interaction)
        assert answer["content"] == STORE_UNAVAILABLE and answer["ephemeral"] is True
    assert bot.worker.explained == []
    assert sum("was deleted" in record.getMessage() for record in caplog.records) == 1


class FakeThread(FakeChannel):
    """A private thread: permissions from its parent, membership asked of Discord."""

    def __init__(self, *, members: set[int], **fields):
        super().__init__(**fields)
        self.members = members

    def is_private(self) -> bool:
        return True

    async def fetch_member(self, user_id: int):
        if user_id not in self.members:
            raise http_error(discord.NotFound, 404, 10007)
        return user_id


@pytest.mark.parametrize(
    ("members", "manager", "explained"), [(set(), False, False), ({ASKER_ID}, False, True), (set(), True, True)]
)
async def test_a_private_thread_is_explained_to_its_members_and_thread_managers(
    monkeypatch, members, manager, explained
):
    monkeypatch.setattr(discord, "Thread", FakeThread)  # what the cog recognises threads by
    thread = FakeThread(id=OTHER_CHANNEL_ID, members=members)
    if not manager:
        thread.denied[ASKER_ID] = {"manage_threads"}
    message = FakeMessage("secret words", id=MESSAGE_ID, channel=thread)
    guild = setup_guild()
    guild.channels[OTHER_CHANNEL_ID] = thread
    thread.messages[MESSAGE_ID] = message
    bot, interaction = make_bot(), make_interaction(guild=guild)
    await ask(bot, interaction, message.jump_url)
    assert bot.worker.explained == (["secret words"] if explained else [])
    if not explained:
        assert "private thread you're not in" in only_answer(interaction)["content"]


# -- picks in the menus under an answer (end to end: tests/e2e/test_picks.py) -----------------


def pick_on(message: FakeMessage, *, guild_id: int = GUILD_ID, private: bool = True, menu=Menu.EMOJI, value=ALL_FIVE):
    label = "All five" if value == ALL_FIVE else value
    return Pick(menu, private, Subject.message(guild_id, message.channel.id, message.id), value, label)


def picks(bot) -> dict[str, float]:
    samples = bot.metrics.why_picks.collect()[0].samples
    return {s.labels["answer"]: s.value for s in samples if s.name.endswith("_total") and s.value}


async def test_a_pick_naming_another_server_is_refused_after_a_private_deferral():
    message = FakeMessage("my words", id=MESSAGE_ID)
    bot, interaction = make_bot(), make_interaction(guild=setup_guild(message))
    await Why(bot).on_explanation_pick(interaction, pick_on(message, guild_id=GUILD_ID + 1))
    assert interaction.response.deferred == {}  # a component's deferral: the answer stays as it is
    assert "another server" in only_answer(interaction)["content"]
    assert bot.worker.explained == [] and picks(bot) == {"refused": 1}


async def test_a_model_failure_when_explaining_again_is_answered_privately():
    message = FakeMessage("my words", id=MESSAGE_ID)
    bot, interaction = make_bot(), make_interaction(guild=setup_guild(message))
    bot.worker.explain_error = Overloaded("busy")
    await Why(bot).on_explanation_pick(interaction, pick_on(message, private=False))
    assert interaction.response.deferred == PRIVATE_DEFERRAL
    answer = only_answer(interaction)
    assert answer["ephemeral"] is True and "couldn't explain that again" in answer["content"]
    assert picks(bot) == {"refused": 1}


async def test_explaining_again_is_one_at_a_time_and_refused_at_once():
    message = FakeMessage("my words", id=MESSAGE_ID)
    bot, interaction = make_bot(), make_interaction(guild=setup_guild(message))
    with bot.explanation_limits.slot(GUILD_ID, ASKER_ID):  # the picker's /why still runs
        await Why(bot).on_explanation_pick(interaction, pick_on(message))
    assert interaction.response.deferred is None and "one at a time" in only_answer(interaction)["content"]
    assert bot.worker.explained == []


async def test_a_pick_whose_message_changed_asks_for_a_new_why():
    message = FakeMessage("i love you", id=MESSAGE_ID)
    bot, interaction = make_bot(), make_interaction(guild=setup_guild(message))
    subject = Subject.message(GUILD_ID, CHANNEL_ID, MESSAGE_ID)
    top = ((EMOJIS[0], 0.5),)
    words = tuple(WordScore(word, 0, 1, 0.1, True, (0.1,), top) for word in ("i", "hate", "you"))
    bot.kept_explanations.keep(subject, Explanation("i hate you", words, top, "occlusion"))  # explained since
    await Why(bot).on_explanation_pick(interaction, Pick(Menu.WORD, True, subject, "1", "love"))
    assert only_answer(interaction)["content"] == CHANGED and interaction.response.deferred is None
    assert picks(bot) == {"refused": 1}


async def test_an_unexpected_failure_in_a_pick_still_gets_an_answer():
    message = FakeMessage("my words", id=MESSAGE_ID)
    bot, interaction = make_bot(), make_interaction(guild=setup_guild(message))

    def broken(key):
        raise RuntimeError("boom")

    bot.kept_explanations.get = broken
    await Why(bot).on_explanation_pick(interaction, pick_on(message))
    assert "went wrong" in only_answer(interaction)["content"] and picks(bot) == {"failed": 1}


def without_history(interaction):
    interaction.permissions = discord.Permissions(view_channel=True, send_messages=True)
    return interaction


@pytest.mark.parametrize("public", [False, True])
@pytest.mark.parametrize("path", ["id", "link", "menu"])
async def test_every_path_to_this_channel_needs_its_read_message_history(path, public):
    """Without Read Message History here, a message ID (or a link, or the menu) is refused as a
    link to another channel would be: one check for every path."""
    message = FakeMessage("older words", id=MESSAGE_ID)
    bot, interaction = make_bot(), without_history(make_interaction(guild=setup_guild(message)))
    if path == "menu":
        await Why(bot).why_message(interaction, message)
        content = only_answer(interaction)["content"]
    else:
        content = await refused(bot, interaction, str(MESSAGE_ID) if path == "id" else message.jump_url, public)
    assert "can't read this channel's message history" in content
    assert bot.worker.explained == []


async def test_free_text_needs_no_permission():
    bot = make_bot()
    await ask(bot, without_history(make_interaction()), "so happy", public=True)
    assert bot.worker.explained == ["so happy"]


HIDDEN = discord.PermissionOverwrite(view_channel=False)
SHOWN = discord.PermissionOverwrite(view_channel=True)
KEEPERS = 4000


def role(role_id: int) -> discord.Object:
    return discord.Object(role_id, type=discord.Role)


def secret_guild(message: FakeMessage) -> FakeGuild:
    """#general for everyone; the message's channel hidden from @everyone, open to KEEPERS."""
    guild = setup_guild(message)
    guild.role_permissions[KEEPERS] = discord.Permissions.none()
    guild.channels[OTHER_CHANNEL_ID].overwrites = {role(GUILD_ID): HIDDEN, role(KEEPERS): SHOWN}
    return guild


async def test_a_public_answer_never_quotes_a_channel_that_not_everyone_here_can_read():
    message = FakeMessage("the secret plan", id=MESSAGE_ID, channel=FakeChannel(id=OTHER_CHANNEL_ID))
    bot, interaction = make_bot(), make_interaction(guild=secret_guild(message))
    await ask(bot, interaction, message.jump_url, public=True)
    assert interaction.response.deferred == PRIVATE_DEFERRAL
    answer = only_answer(interaction)
    assert answer["ephemeral"] is True and bot.worker.explained == ["the secret plan"]
    first_line, rest = answer["content"].split("\n", 1)
    assert first_line == f"-# Only you see this: not everyone who can see this channel can read <#{OTHER_CHANNEL_ID}>."
    assert "the" in rest and len(answer["content"]) <= 2000


async def test_a_public_answer_quotes_a_channel_everyone_here_can_read():
    message = FakeMessage("the open plan", id=MESSAGE_ID, channel=FakeChannel(id=OTHER_CHANNEL_ID))
    guild = secret_guild(message)
    guild.channels[OTHER_CHANNEL_ID].overwrites = {}  # no longer secret
    bot, interaction = make_bot(), make_interaction(guild=guild)
    await ask(bot, interaction, message.jump_url, public=True)
    assert interaction.response.deferred["ephemeral"] is False
    answer = only_answer(interaction)
    assert answer["ephemeral"] is False and "Only you" not in answer["content"]
    here = make_interaction(guild=guild)  # and a message of this very channel
    guild.channels[CHANNEL_ID].messages[MESSAGE_ID + 1] = FakeMessage("hello all", id=MESSAGE_ID + 1)
    await ask(bot, here, str(MESSAGE_ID + 1), public=True)
    assert only_answer(here)["ephemeral"] is False


async def test_a_public_answer_stays_private_when_the_channels_cannot_be_checked():
    message = FakeMessage("who knows", id=MESSAGE_ID, channel=FakeChannel(id=OTHER_CHANNEL_ID))
    guild = setup_guild(message)
    guild.channels[OTHER_CHANNEL_ID].overwrites = None  # as an uncached, partial channel
    bot, interaction = make_bot(), make_interaction(guild=guild)
    await ask(bot, interaction, message.jump_url, public=True)
    answer = only_answer(interaction)
    assert answer["ephemeral"] is True and "couldn't check who can see" in answer["content"]


async def test_a_private_thread_is_never_quoted_publicly_elsewhere(monkeypatch):
    monkeypatch.setattr(discord, "Thread", FakeThread)
    thread = FakeThread(id=OTHER_CHANNEL_ID, members={ASKER_ID})
    message = FakeMessage("thread secret", id=MESSAGE_ID, channel=thread)
    guild = setup_guild()
    guild.channels[OTHER_CHANNEL_ID] = thread
    thread.messages[MESSAGE_ID] = message
    bot, interaction = make_bot(), make_interaction(guild=guild)
    await ask(bot, interaction, message.jump_url, public=True)
    answer = only_answer(interaction)
    assert answer["ephemeral"] is True and "in a private thread" in answer["content"]
    inside = make_interaction(guild=guild, channel=thread)  # in the thread itself it may be public
    await ask(bot, inside, str(MESSAGE_ID), public=True)
    assert only_answer(inside)["ephemeral"] is False


async def until(condition, turns: int = 1000) -> None:
    """Let the event loop run until ``condition()`` holds (the fakes never really wait)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_a_burst_of_members_is_queued_and_every_one_answered():
    """20 members ask at once in one server whose cap is 3: they wait their turn, none is refused."""
    bot = make_bot()
    gate = asyncio.Event()
    explain = bot.worker.explain
    running: list[str] = []
    most_at_once = 0

    async def slow_explain(text):
        nonlocal most_at_once
        running.append(text)
        most_at_once = max(most_at_once, len(running))
        await gate.wait()
        running.remove(text)
        return await explain(text)

    bot.worker.explain = slow_explain
    interactions = [make_interaction(user_id=ASKER_ID + n) for n in range(20)]
    asked = [
        asyncio.create_task(ask(bot, interaction, f"happy words {n}")) for n, interaction in enumerate(interactions)
    ]
    await until(lambda: len(running) == 3 and all(i.response.is_done() for i in interactions))
    assert all(i.response.deferred == PRIVATE_DEFERRAL for i in interactions)
    gate.set()
    await asyncio.wait_for(asyncio.gather(*asked), 10)
    assert sorted(bot.worker.explained) == sorted(f"happy words {n}" for n in range(20))
    assert all("happy" in only_answer(interaction)["content"] for interaction in interactions)
    assert most_at_once == 3  # the server's cap still holds


async def test_a_long_wait_is_refused_at_once_saying_how_long():
    bot = make_bot()
    bot.explanation_limits = ExplanationLimits(cooldown_s=0.0, max_per_server=1, long_wait_s=2.5)
    gate = asyncio.Event()
    explain = bot.worker.explain

    async def slow_explain(text):
        await gate.wait()
        return await explain(text)

    bot.worker.explain = slow_explain
    first, second, third = (make_interaction(user_id=ASKER_ID + n) for n in range(3))
    asked = [asyncio.create_task(ask(bot, first, "so happy")), asyncio.create_task(ask(bot, second, "so glad"))]
    await until(lambda: first.response.is_done() and second.response.is_done())
    await ask(bot, third, "so sad", public=True)  # two ahead at 1 s each (the first estimate): 3 s
    assert "2 explanations to finish before yours, about 3 s" in only_answer(third)["content"]
    assert third.response.deferred is None
    gate.set()
    await asyncio.gather(*asked)
    assert sorted(bot.worker.explained) == ["so glad", "so happy"]
