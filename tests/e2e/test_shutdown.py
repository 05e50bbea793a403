"""End to end, shutdown: the gateway is paused first, so nothing new arrives; what was received
is finished (or, past the deadline, counted and answered); one line says what became of it.

A store behind a gate (``GatedStore``) holds messages and interactions under way at the moment
shutdown begins, so the tests decide what is still running, never a measured time.
"""

from __future__ import annotations

import asyncio
import logging

from bot.app import RESTARTING
from tests.e2e.support import TOP_K, WAIT_S, enable, shed_counts
from tests.e2e.test_robustness import GatedStore, link
from tests.fake_discord.whymoji import running_whymoji


def summary(caplog) -> str:
    (line,) = [
        r.getMessage() for r in caplog.records if r.name == "bot.app" and r.getMessage().startswith("shut down:")
    ]
    return line


async def under_way(fake, bot, count: int):
    """``count`` messages, a `/why` of a linked message and `/whymoji show`, all held at the store."""
    target = fake.world.add_message(fake.general.id, fake.moderator, "lol what a great day")
    bot._store = store = GatedStore(bot.store, fake)
    messages = [await fake.send_message(fake.general, fake.alice, f"i love you so much !! {n}") for n in range(count)]
    why = await fake.slash(fake.alice, fake.general, "why", target=link(fake, target))
    show = await fake.slash(fake.moderator, fake.general, "whymoji show")
    # Each message waits in both listeners (reactions, hints); each command once.
    await fake.wait_for(lambda: len(store.waiting) >= 2 * count + 2, WAIT_S, "everything held at the store")
    await fake.wait_for(lambda: why.acknowledged and show.acknowledged, WAIT_S, "the deferrals")
    return store, messages, why, show


async def test_work_received_before_shutdown_is_finished_and_nothing_new_is_taken(fake_discord, make_config, caplog):
    fake = fake_discord
    caplog.set_level(logging.INFO, logger="bot.app")
    async with running_whymoji(fake, make_config(fake)) as bot:
        await enable(fake, fake.general)
        store, messages, why, show = await under_way(fake, bot, 5)
        closing = asyncio.create_task(bot.close())
        await fake.wait_for(lambda: fake.gateway.sessions[0].connection is None, WAIT_S, "the gateway paused")
        assert not closing.done()
        late = await fake.send_message(fake.general, fake.alice, "i love you so much !!")  # never received
        store.gate.set()
        await asyncio.wait_for(closing, WAIT_S)
        shed = shed_counts(bot)
    assert all(len(message.reactions) == TOP_K for message in messages) and late.reactions == []
    assert "occlusion" in why.original.content and "(topk)" in show.original.content
    assert shed == {}
    line = summary(caplog)
    assert line.startswith("shut down: 12 handlers were under way (12 finished, 0 cancelled); 15 reactions placed; ")
    assert "0 messages shed (shutdown)" in line and "0 interactions answered 'restarting'" in line


async def test_past_the_deadline_every_message_is_counted_and_every_interaction_answered(
    fake_discord, make_config, caplog
):
    fake = fake_discord
    caplog.set_level(logging.INFO, logger="bot.app")
    async with running_whymoji(fake, make_config(fake)) as bot:
        await enable(fake, fake.general)
        bot.drain_timeout_s = 0.2  # the store never answers: the deadline comes first
        store, messages, why, show = await under_way(fake, bot, 5)
        await asyncio.wait_for(bot.close(), WAIT_S)
        shed = shed_counts(bot)
        assert not store.gate.is_set()
    assert all(message.reactions == [] for message in messages)
    assert shed == {"shutdown": 5}
    for record in (why, show):
        assert record.original.content == RESTARTING and record.original.flags & 64
    line = summary(caplog)
    assert line.startswith("shut down: 12 handlers were under way (0 finished, 12 cancelled); 0 reactions placed; ")
    assert "5 messages shed (shutdown), 5 not checked for hints" in line
    assert "2 interactions answered 'restarting' (0 arrived while stopping, 0 /why in line, 2 cut short)" in line
