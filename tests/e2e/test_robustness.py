"""End to end, when things go wrong: slow or failing settings, rate limits, private threads, abuse.

The real bot against the fake Discord, as in ``test_e2e``. A store behind a gate stands for a
database that hangs: the test holds it closed and checks what Discord has received meanwhile,
so "answered in time" is a fact about order (before the gate opened), never a measured time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot.explain import explain
from bot.explain.render import render_markdown
from bot.interactions.replies import STORE_UNAVAILABLE
from bot.rules.markup import normalize_markup
from bot.store import StoreError
from cogs.why import CONTEXT_MENU_NAME
from tests.e2e.support import TOP_K, WAIT_S, answered, enable, expected_reactions, placed, shed_counts
from tests.fake_discord import FakeDiscord
from tests.fake_discord.whymoji import running_whymoji
from tests.test_app import healthz


class GatedStore:
    """The bot's real settings store behind a gate: each settings call waits until the test
    opens the gate, then goes through, or fails with ``error`` when one is set (nothing is
    written then). ``status`` and ``close`` pass straight through, so shutdown never hangs."""

    GATED = ("get_guild", "update_guild", "set_channel_enabled", "is_opted_out", "set_opted_out")

    def __init__(self, store: Any, fake: FakeDiscord) -> None:
        self._store = store
        self._fake = fake
        self.gate = asyncio.Event()
        self.error: Exception | None = None
        self.waiting: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        if name not in self.GATED:
            return method

        async def gated(*args: Any, **kwargs: Any) -> Any:
            self.waiting.append(name)
            self._fake.changed()
            await self.gate.wait()
            if self.error is not None:
                raise self.error
            return await method(*args, **kwargs)

        return gated


def link(fake: FakeDiscord, message) -> str:
    return f"https://discord.com/channels/{fake.guild.id}/{message.channel_id}/{message.id}"


async def test_every_command_is_acknowledged_before_a_hung_store_answers(fake_discord, make_config, engine):
    fake = fake_discord
    target = fake.world.add_message(fake.general.id, fake.moderator, "i love you so much !!")
    async with running_whymoji(fake, make_config(fake)) as bot:
        real_store = bot.store
        bot._store = store = GatedStore(real_store, fake)
        records = {
            "optout": await fake.slash(fake.alice, fake.general, "whymoji optout"),
            "topk": await fake.slash(fake.moderator, fake.general, "whymoji topk", count=2),
            "show": await fake.slash(fake.moderator, fake.general, "whymoji show"),
            "enable": await fake.slash(fake.moderator, fake.general, "whymoji enable"),
            "why link": await fake.slash(fake.alice, fake.general, "why", target=link(fake, target)),
            "menu": await fake.message_command(fake.moderator, target, CONTEXT_MENU_NAME),
        }
        await fake.wait_for(
            lambda: all(record.acknowledged for record in records.values()), WAIT_S, "every first answer"
        )
        assert not store.gate.is_set()
        assert {record.callback_type for record in records.values()} == {5}  # deferred, "thinking..."
        assert all(record.original.flags & 64 for record in records.values())  # privately
        assert not any(record.answered for record in records.values())

        store.gate.set()
        for name, record in records.items():
            await answered(fake, record, name)
        assert await real_store.is_opted_out(fake.alice.id)
        assert (await real_store.get_guild(fake.guild.id)).top_k == 2
    assert "opted out" in records["optout"].original.content
    assert "up to 2 emojis" in records["topk"].original.content
    assert records["why link"].original.content == render_markdown(explain(engine, normalize_markup(target.content)))


async def test_a_write_that_fails_is_reported_as_not_done(fake_discord, make_config):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        real_store = bot.store
        bot._store = store = GatedStore(real_store, fake)
        topk = await fake.slash(fake.moderator, fake.general, "whymoji topk", count=2)
        await fake.wait_for(lambda: topk.acknowledged and store.waiting, WAIT_S, "the deferral, then the write")
        store.error = StoreError("SQLite database settings.sqlite3: database is locked")
        store.gate.set()
        await answered(fake, topk, "the failure")
        settings = await real_store.get_guild(fake.guild.id)
    assert "couldn't do that" in topk.original.content and "2 emojis" not in topk.original.content
    assert settings.top_k == 3  # nothing changed, as the user was told


async def test_a_public_why_is_refused_in_time_and_never_explained_later(fake_discord, make_config):
    fake = fake_discord
    target = fake.world.add_message(fake.general.id, fake.moderator, "i love you so much !!")
    async with running_whymoji(fake, make_config(fake)) as bot:
        bot.get_cog("Why").target_check_s = 0.2
        bot._store = store = GatedStore(bot.store, fake)
        public = await fake.slash(fake.alice, fake.general, "why", target=link(fake, target), public=True)
        await answered(fake, public, "the refusal")
        assert not store.gate.is_set()
        assert public.callback_type == 4 and public.original.flags & 64  # answered at once, privately
        assert "try again" in public.original.content
        store.gate.set()
        again = await answered(fake, await fake.slash(fake.alice, fake.general, "why", target="so happy"), "next")
        why_answers = bot.metrics.why_requests._value.get()
    assert why_answers == 1 and again.original.content  # only the later request was explained
    assert len(public.responses) == 1


async def test_one_why_at_a_time_per_user(fake_discord, make_config):
    fake = fake_discord
    target = fake.world.add_message(fake.general.id, fake.moderator, "i love you so much !!")
    async with running_whymoji(fake, make_config(fake)) as bot:
        bot._store = store = GatedStore(bot.store, fake)
        first = await fake.slash(fake.alice, fake.general, "why", target=link(fake, target))
        await fake.wait_for(lambda: store.waiting, WAIT_S, "the first request to read the store")
        second = await answered(fake, await fake.slash(fake.alice, fake.general, "why", target="so happy"), "no")
        other = await fake.slash(fake.moderator, fake.general, "why", target="so happy")
        await answered(fake, other, "somebody else's /why")
        assert not first.answered
        store.gate.set()
        await answered(fake, first, "the first request")
    assert "one at a time" in second.original.content and second.original.flags & 64
    assert "one at a time" not in first.original.content + other.original.content


async def test_a_target_longer_than_discord_allows_is_refused(fake_discord, make_config):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        record = await answered(fake, await fake.slash(fake.alice, fake.general, "why", target="lol " * 25_000), "x")
        explained = bot.metrics.why_requests._value.get()
    assert "4,000 characters" in record.original.content and record.original.flags & 64
    assert explained == 0


async def test_threads_are_explained_only_to_those_who_can_read_them(fake_discord, make_config, engine):
    fake = fake_discord
    carol = fake.add_user("carol")
    threads = {
        "public": fake.add_thread(fake.general, "public", members=(carol,)),
        "private": fake.add_thread(fake.general, "private", private=True, members=(carol,)),
        "archived public": fake.add_thread(fake.general, "old", archived=True, members=(carol,)),
        "archived private": fake.add_thread(fake.general, "old secret", private=True, archived=True, members=(carol,)),
    }
    messages = {name: fake.world.add_message(t.id, carol, "i love you so much !!") for name, t in threads.items()}
    asked: dict[tuple[str, str], Any] = {}
    async with running_whymoji(fake, make_config(fake)):
        for who, user in (("alice", fake.alice), ("carol", carol), ("moderator", fake.moderator)):
            for name, message in messages.items():
                record = await fake.slash(user, fake.general, "why", target=link(fake, message))
                asked[who, name] = await answered(fake, record, f"{who} on the {name} thread")
    refused = {key for key, record in asked.items() if "private thread you're not in" in record.original.content}
    assert refused == {("alice", "private"), ("alice", "archived private")}
    explanation = render_markdown(explain(engine, "i love you so much !!"))
    explained = {key for key, record in asked.items() if record.original.content == explanation}
    assert explained == set(asked) - refused  # members, and moderators (Manage Threads), may


async def test_a_long_rate_limit_sheds_the_channels_reactions_instead_of_freezing_it(fake_discord, make_config):
    fake = fake_discord
    quiet = fake.add_channel("quiet")
    async with running_whymoji(fake, make_config(fake)) as bot:
        await enable(fake, fake.general)
        await enable(fake, quiet)
        fake.rate_limit_reactions(1, retry_after=60.0)
        await fake.send_message(fake.general, fake.alice, "i love you so much !!")
        await fake.wait_for(lambda: shed_counts(bot).get("rate_limited") == TOP_K, WAIT_S, "the shed reactions")
        later = await fake.send_message(fake.general, fake.alice, "lol what a great day")
        elsewhere = await fake.send_message(quiet, fake.alice, "lol what a great day")
        await fake.wait_for(lambda: len(elsewhere.reactions) == TOP_K, WAIT_S, "reactions in another channel")
        await fake.wait_for(lambda: shed_counts(bot).get("rate_limited") == TOP_K + 1, WAIT_S, "the later message")
        tries = fake.calls("PUT", f"/channels/{fake.general.id}/")
    assert later.reactions == [] and [call.status for call in tries] == [429]  # no more tries during the wait


async def test_reactions_stuck_behind_a_rate_limit_are_shed_at_the_deadline(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        bot.get_cog("Reactions").deadline_s = 0.2
        await enable(fake, fake.general)
        fake.rate_limit_reactions(1, retry_after=20.0)  # under 30 s: discord.py would sleep it out
        stuck = await fake.send_message(fake.general, fake.alice, "i love you so much !!")
        await fake.wait_for(lambda: shed_counts(bot).get("rate_limited") == TOP_K, WAIT_S, "the shed reactions")
        after = await fake.send_message(fake.general, fake.alice, "lol what a great day")
        await fake.wait_for(lambda: len(after.reactions) == TOP_K, WAIT_S, "the next message's reactions")
        reacted = placed(bot)
    assert stuck.reactions == [] and after.reactions == expected_reactions(engine, after.content)
    assert reacted == TOP_K


async def test_a_vanished_database_is_noticed_counted_and_reported(fake_discord, make_config, tmp_path):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake, health={"enabled": True, "port": 0})) as bot:
        await enable(fake, fake.general)
        await asyncio.wait_for(bot.wait_until_ready(), WAIT_S)
        assert (await healthz(bot.health_server.port))[0] == 200
        (tmp_path / "settings.sqlite3").unlink()
        message = await fake.send_message(fake.general, fake.alice, "i love you so much !!")
        await fake.wait_for(lambda: shed_counts(bot).get("store_unavailable"), WAIT_S, "the shed message")
        status, body = await healthz(bot.health_server.port)
    assert message.reactions == []
    assert status == 503 and body["status"] == "failing" and "was deleted" in body["store"]["error"]
    assert body["problems"] == [f"store: {body['store']['error']}"] and body["shards"]["0"]["connected"]


async def test_the_message_command_answers_when_the_store_fails(fake_discord, make_config, tmp_path):
    """The menu is registered on the tree itself, not through the cog: its failures must still be
    answered (the slash command's are, by the cog's error handler)."""
    fake = fake_discord
    target = fake.world.add_message(fake.general.id, fake.moderator, "i love you so much !!")
    async with running_whymoji(fake, make_config(fake)) as bot:
        (tmp_path / "settings.sqlite3").unlink()
        menu = await answered(fake, await fake.message_command(fake.alice, target, CONTEXT_MENU_NAME), "the menu")
        slash = await answered(fake, await fake.slash(fake.alice, fake.general, "why", target=link(fake, target)), "/")
        explained = bot.metrics.why_requests._value.get()
    assert menu.original.content == slash.original.content == STORE_UNAVAILABLE
    assert menu.original.flags & 64 and explained == 0


async def test_a_burst_of_why_from_many_members_is_queued_not_refused(fake_discord, make_config, engine):
    fake = fake_discord
    members = [fake.add_user(f"member{n}") for n in range(12)]
    texts = [f"i love you so much !! {n}" for n in range(len(members))]
    async with running_whymoji(fake, make_config(fake)) as bot:
        records = [await fake.slash(member, fake.general, "why", target=text) for member, text in zip(members, texts)]
        for record in records:
            await answered(fake, record, "every member's answer")
        explained = bot.metrics.why_requests._value.get()
    assert [record.original.content for record in records] == [
        render_markdown(explain(engine, normalize_markup(text))) for text in texts
    ]
    assert explained == len(members)  # the server's cap is 3: the others waited their turn


async def test_a_burst_beyond_what_is_under_way_is_shed_and_every_message_counted(fake_discord, make_config):
    """Messages under way are bounded (``worker.queue_size``, here 2): while two wait for their
    settings, the rest of the burst is shed as overload at once, so it holds no memory."""
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake, worker={"queue_size": 2})) as bot:
        await enable(fake, fake.general)
        bot._store = store = GatedStore(bot.store, fake)
        messages = [await fake.send_message(fake.general, fake.alice, f"i love you so much !! {n}") for n in range(30)]
        await fake.wait_for(lambda: shed_counts(bot).get("overload") == 28, WAIT_S, "the rest of the burst shed")
        store.gate.set()
        await fake.wait_for(lambda: sum(len(m.reactions) == TOP_K for m in messages) == 2, WAIT_S, "two reacted")
        shed = shed_counts(bot)
    assert shed == {"overload": 28}  # 2 reacted + 28 shed: every message of the burst counted
