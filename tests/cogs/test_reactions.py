"""Reactions cog: which messages get emojis, and every reaction placed or counted as shed."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import discord
import pytest

from bot.deepmoji.emojis import EMOJIS, top_emojis
from bot.deepmoji.engine import EmptyTextError
from bot.serving.worker import ModelError, Overloaded, WorkerStopped
from bot.store import StoreError
from cogs.reactions import MAX_ATTEMPTS, Reactions, place_reactions, reaction_channel_enabled
from tests.cog_fakes import (
    AUTHOR_ID,
    CHANNEL_ID,
    FakeChannel,
    FakeMessage,
    counter,
    http_error,
    make_bot,
    probabilities,
)


class Recorder:
    """``add_reaction`` that raises the scripted errors in turn, then succeeds."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.placed = []
        self.sleeps = []

    async def add_reaction(self, emoji):
        if self.errors:
            error = self.errors.pop(0)
            if error is not None:
                raise error
        self.placed.append(emoji)

    async def sleep(self, seconds):
        self.sleeps.append(seconds)


async def place(recorder, reactions=("a", "b", "c")):
    return await place_reactions(recorder.add_reaction, list(reactions), sleep=recorder.sleep)


# -- place_reactions -------------------------------------------------------------------


async def test_all_reactions_placed_in_order():
    recorder = Recorder()
    placement = await place(recorder)
    assert recorder.placed == ["a", "b", "c"]
    assert (placement.placed, placement.shed, placement.channel_forbidden) == (3, {}, False)


async def test_escaped_429_is_retried_after_retry_after():
    recorder = Recorder(http_error(discord.HTTPException, 429, headers={"Retry-After": "1.5"}))
    placement = await place(recorder)
    assert recorder.placed == ["a", "b", "c"]
    assert recorder.sleeps == [1.5]
    assert placement.placed == 3 and placement.shed == {}


async def test_rate_limited_exception_uses_its_retry_after():
    recorder = Recorder(discord.RateLimited(2.0))
    placement = await place(recorder, ["a"])
    assert recorder.sleeps == [2.0] and placement.placed == 1


async def test_persistent_429_is_shed_after_bounded_attempts_and_the_burst_goes_on():
    rate_limit = http_error(discord.HTTPException, 429)
    recorder = Recorder(*[rate_limit] * MAX_ATTEMPTS)
    placement = await place(recorder)
    assert recorder.placed == ["b", "c"]
    assert len(recorder.sleeps) == MAX_ATTEMPTS - 1
    assert placement.placed == 2 and placement.shed == {"rate_limited": 1}


async def test_too_long_retry_after_sheds_the_rest_without_waiting():
    recorder = Recorder(discord.RateLimited(3600.0))
    placement = await place(recorder, ["a", "b"])
    assert recorder.sleeps == [] and recorder.placed == []
    assert placement.shed == {"rate_limited": 2} and placement.retry_after == 3600.0


async def test_server_errors_are_retried_client_errors_are_not():
    server_error = http_error(discord.DiscordServerError, 503)
    recorder = Recorder(server_error, None, http_error(discord.HTTPException, 400, 30010))
    placement = await place(recorder, ["a", "b"])
    assert recorder.placed == ["a"] and len(recorder.sleeps) == 1
    assert placement.shed == {"http_error": 1}


async def test_forbidden_stops_and_sheds_the_rest():
    recorder = Recorder(None, http_error(discord.Forbidden, 403, 50013))
    placement = await place(recorder)
    assert recorder.placed == ["a"]
    assert placement.channel_forbidden and placement.shed == {"forbidden": 2}


async def test_blocked_by_the_author_is_not_a_channel_problem():
    recorder = Recorder(http_error(discord.Forbidden, 403, 90001))
    placement = await place(recorder)
    assert not placement.channel_forbidden and placement.shed == {"blocked": 3}


async def test_deleted_message_sheds_the_rest_unknown_emoji_only_itself():
    gone = await place(Recorder(None, http_error(discord.NotFound, 404, 10008)))
    assert gone.placed == 1 and gone.shed == {"message_gone": 2}
    recorder = Recorder(http_error(discord.NotFound, 404, 10014))
    unknown = await place(recorder)
    assert recorder.placed == ["b", "c"] and unknown.shed == {"unknown_emoji": 1}


def test_threads_follow_their_parent_channel():
    assert reaction_channel_enabled(FakeChannel(id=5), frozenset({5}))
    assert not reaction_channel_enabled(FakeChannel(id=6), frozenset({5}))
    thread = FakeChannel(id=7)
    thread.parent_id = 5
    assert reaction_channel_enabled(thread, frozenset({5}))


# -- the cog ---------------------------------------------------------------------------


def expected_reactions(bot, row):
    picks = top_emojis(row, bot.store.settings.top_k, bot.store.settings.threshold)
    return [emoji.reaction for emoji, _ in picks]


async def test_reacts_with_the_top_emojis_in_order():
    bot = make_bot(top_k=2)
    bot.worker.row = probabilities(8, 4, 0)
    message = FakeMessage("**I love you** <@123>")
    await Reactions(bot).on_message(message)
    assert message.reactions == [EMOJIS[8].reaction, EMOJIS[4].reaction]
    assert bot.worker.predicted == ["I love you @user"]
    assert counter(bot.metrics.messages_seen) == 1
    assert counter(bot.metrics.reactions_placed) == 2


async def test_threshold_limits_the_emojis():
    bot = make_bot(top_k=3, threshold=0.35)
    bot.worker.row = probabilities(8, 4, 0)  # 0.45, 0.30, 0.15
    message = FakeMessage("hello")
    await Reactions(bot).on_message(message)
    assert message.reactions == expected_reactions(bot, bot.worker.row) == [EMOJIS[8].reaction]


@pytest.mark.parametrize(
    "change",
    [
        {"guild": None},
        {"webhook_id": 9},
        {"system": True},
        {"channel": FakeChannel(id=CHANNEL_ID + 1)},  # not enabled
        {"content": "```only code```"},
    ],
)
async def test_ignored_messages(change):
    bot = make_bot()
    message = FakeMessage("hello")
    for name, value in change.items():
        setattr(message, name, value)
    await Reactions(bot).on_message(message)
    assert message.reactions == [] and bot.worker.predicted == []


async def test_bots_and_opted_out_users_are_ignored():
    bot = make_bot()
    message = FakeMessage("hello")
    message.author.bot = True
    await Reactions(bot).on_message(message)
    bot.store.opted_out.add(AUTHOR_ID)
    await Reactions(bot).on_message(FakeMessage("hello"))
    assert bot.worker.predicted == []


async def test_cooldown_sheds_and_counts():
    bot = make_bot(cooldown_s=60.0)
    cog = Reactions(bot)
    first, second = FakeMessage("hello", id=1), FakeMessage("nice day", id=2)  # both readable
    await cog.on_message(first)
    await cog.on_message(second)
    assert first.reactions and not second.reactions
    assert counter(bot.metrics.reactions_shed, reason="cooldown") == 1
    assert counter(bot.metrics.messages_seen) == 2


async def test_overloaded_worker_means_no_reactions_and_no_crash():
    bot = make_bot()
    bot.worker.error = Overloaded("queue full")
    message = FakeMessage("hello")
    await Reactions(bot).on_message(message)
    assert message.reactions == []


async def test_forbidden_channel_is_skipped_until_settings_change(caplog):
    bot = make_bot()
    cog = Reactions(bot)
    forbidden = http_error(discord.Forbidden, 403, 50013)
    await cog.on_message(FakeMessage("hello", id=1, reaction_errors=[forbidden]))
    read_settings = bot.store.get_guild
    bot.store.get_guild = None  # a skipped channel costs no settings read
    later = FakeMessage("hello", id=2)
    await cog.on_message(later)
    assert later.reactions == [] and bot.worker.predicted == ["hello"]
    bot.store.get_guild = read_settings
    assert counter(bot.metrics.reactions_shed, reason="forbidden") == 3
    assert sum("no permission to react" in r.getMessage() for r in caplog.records) == 1
    await cog.on_whymoji_settings_changed(later.guild.id)
    await cog.on_message(later)
    assert len(later.reactions) == 3


async def test_burst_accounts_for_every_reaction():
    """Five messages under rate limiting: placed + shed == asked, none lost."""
    bot = make_bot()
    waits = []
    cog = Reactions(bot, sleep=lambda seconds: asyncio.sleep(0, waits.append(seconds)))
    rate_limit = http_error(discord.HTTPException, 429)
    messages = [FakeMessage("hello", id=i, reaction_errors=[rate_limit] * i) for i in range(5)]
    for message in messages:
        await cog.on_message(message)
    placed = counter(bot.metrics.reactions_placed)
    shed = counter(bot.metrics.reactions_shed, reason="rate_limited")
    assert placed == sum(len(m.reactions) for m in messages)
    assert placed + shed == 3 * len(messages)
    assert shed > 0 and waits


# -- the server's rules: each is tested where it lives (tests/rules/test_reactions.py) and end to end
# (tests/e2e/test_e2e.py); here, only how the cog applies them ----------------------------


async def test_the_chance_decides_with_the_injected_dice_before_the_model():
    bot = make_bot(chance=40)
    rolls = iter([0.39, 0.40, 0.95])
    cog = Reactions(bot, roll=lambda: next(rolls))
    messages = [FakeMessage("hello", id=n) for n in range(3)]
    for message in messages:
        await cog.on_message(message)
    assert [bool(m.reactions) for m in messages] == [True, False, False]
    assert bot.worker.predicted == ["hello"]
    assert counter(bot.metrics.reactions_shed, reason="chance") == 2


async def test_silenced_messages_do_not_start_the_channel_pause():
    bot = make_bot(cooldown_s=60.0)
    cog = Reactions(bot)
    unreadable, readable = FakeMessage("我我我", id=1), FakeMessage("hello", id=2)
    await cog.on_message(unreadable)
    await cog.on_message(readable)
    assert readable.reactions and counter(bot.metrics.reactions_shed, reason="cooldown") == 0


async def test_each_decision_is_logged_at_debug_without_the_text(caplog):
    caplog.set_level(logging.DEBUG, logger="cogs.reactions")
    bot = make_bot()
    cog = Reactions(bot)
    await cog.on_message(FakeMessage("我今天很开心", id=1))
    await cog.on_message(FakeMessage("i love you", id=2))
    bot.worker.row = probabilities(3, 46, 34, mass=0.9)
    await cog.on_message(FakeMessage("so sad today", id=3))
    lines = [record.getMessage() for record in caplog.records]
    assert any("message 1 gets no reactions (unreadable): the model knows 0 of 6 words" in line for line in lines)
    assert any(line.startswith("message 2: reacting with") for line in lines)
    assert any("message 3 gets no reactions (distress)" in line for line in lines)
    for text in ("我", "love", "sad"):
        assert not any(text in line for line in lines)


# -- every message ends placed or shed with a reason ---------------------------------------


async def test_a_store_outage_sheds_every_message_and_logs_one_line(caplog):
    bot = make_bot()
    bot.store.error = StoreError("PostgreSQL db:5432: ConnectionRefusedError")
    cog = Reactions(bot)
    caplog.set_level(logging.DEBUG)
    for number in range(5):
        await cog.on_message(FakeMessage("hello", id=number))
    assert counter(bot.metrics.reactions_shed, reason="store_unavailable") == 5
    lines = [record for record in caplog.records if "ConnectionRefusedError" in record.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None  # one line, no traceback per message


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ModelError("the model failed (RuntimeError)"), "model_error"),
        (EmptyTextError(0, 1), "refused"),
        (Overloaded("queue full"), "overload"),
        (WorkerStopped("shutting down"), "shutdown"),
    ],
)
async def test_a_prediction_that_fails_is_counted_by_the_cog_once(error, reason):
    bot = make_bot()
    bot.worker.error = error
    await Reactions(bot).on_message(FakeMessage("hello"))
    samples = bot.metrics.reactions_shed.collect()[0].samples
    counted = [(sample.labels["reason"], sample.value) for sample in samples if sample.name.endswith("_total")]
    assert counted == [(reason, 1)]


async def test_a_message_interrupted_by_shutdown_is_counted():
    bot = make_bot()
    started, never = asyncio.Event(), asyncio.Event()

    async def stuck_reaction(emoji):
        started.set()
        await never.wait()

    message = FakeMessage("hello")
    message.add_reaction = stuck_reaction
    handling = asyncio.create_task(Reactions(bot).on_message(message))
    await started.wait()
    handling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await handling
    assert counter(bot.metrics.reactions_shed, reason="shutdown") == 1


async def test_a_channel_told_to_wait_long_sheds_its_messages_without_asking_discord():
    bot = make_bot()
    cog = Reactions(bot)
    first = FakeMessage("hello", id=1, reaction_errors=[discord.RateLimited(60.0)])
    await cog.on_message(first)
    later = FakeMessage("again", id=2)
    await cog.on_message(later)
    elsewhere = FakeMessage("hello", id=3, channel=FakeChannel(id=CHANNEL_ID + 1))
    bot.store.settings = replace(bot.store.settings, enabled_channels=frozenset({CHANNEL_ID, CHANNEL_ID + 1}))
    await cog.on_message(elsewhere)
    assert first.reactions == later.reactions == [] and len(elsewhere.reactions) == 3
    assert counter(bot.metrics.reactions_shed, reason="rate_limited") == 3 + 1
    assert bot.worker.predicted == ["hello", "hello"]  # the paused channel's message was not even predicted


async def test_reactions_not_placed_by_the_deadline_are_shed():
    never = asyncio.Event()

    async def held(emoji):
        await never.wait()  # discord.py sleeping out a retry_after

    placement = await place_reactions(held, ["a", "b"], deadline_s=0.01)
    assert placement.placed == 0 and placement.shed == {"rate_limited": 2}


async def test_messages_beyond_those_under_way_are_shed_at_the_door_and_counted():
    """A burst: while ``max_in_flight`` messages are being handled, the next is shed as overload
    before anything is read for it (it holds no text while the others are worked on)."""
    bot = make_bot()
    bot.predictions.max_in_flight = 2
    started, release = asyncio.Event(), asyncio.Event()

    async def held_reaction(emoji):
        started.set()
        await release.wait()

    cog = Reactions(bot)
    held = [FakeMessage("hello", id=n) for n in (1, 2)]
    for message in held:
        message.add_reaction = held_reaction
    under_way = [asyncio.create_task(cog.on_message(message)) for message in held]
    await started.wait()
    for _ in range(1000):  # the fakes never really wait: a few turns of the loop
        if bot.predictions.in_flight() == 2 and len(bot.worker.predicted) == 2:
            break
        await asyncio.sleep(0)
    assert bot.predictions.in_flight() == 2
    bot.store.error = StoreError("must not be asked")
    late = [FakeMessage("hello", id=n) for n in range(3, 8)]
    for message in late:
        await cog.on_message(message)
    assert counter(bot.metrics.reactions_shed, reason="overload") == 5
    assert counter(bot.metrics.reactions_shed, reason="store_unavailable") == 0
    bot.store.error = None
    release.set()
    await asyncio.gather(*under_way)
    after = FakeMessage("hello", id=9)
    await cog.on_message(after)  # once those are done, messages are handled again
    assert len(after.reactions) == 3 and bot.predictions.in_flight() == 0
