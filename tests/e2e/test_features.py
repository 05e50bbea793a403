"""End to end: the real bot (config file, start-up, cogs, worker, SQLite) against FakeDiscord.

Every expectation is computed from the same small seeded model the bot loads, through the
engine's own API, so these tests check the wiring, not numbers copied from a run. Every wait
is bounded (``fake.wait_for``), so a broken bot fails here instead of hanging CI.
"""

from __future__ import annotations

import logging

import numpy as np

from bot.deepmoji.emojis import EMOJIS
from bot.explain import explain
from bot.explain.render import DISCORD_LIMIT, render_markdown
from bot.rules.hostility import hostility
from bot.rules.markup import normalize_markup
from cogs.moderation import format_hint, hint_header
from cogs.why import CONTEXT_MENU_NAME
from tests.e2e.support import TEXTS, TOP_K, WAIT_S, answered, enable, expected_reactions, placed, shed_counts
from tests.fake_discord import FakeDiscord
from tests.fake_discord.whymoji import running_whymoji


async def test_reactions_are_the_models_top_k_in_order(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        await enable(fake, fake.general)
        quiet = await fake.send_message(fake.mod_channel, fake.alice, "i love you so much !!")
        contents = [text.format(alice=fake.alice.id) for text in TEXTS]
        messages = [await fake.send_message(fake.general, fake.alice, content) for content in contents]
        expected = [expected_reactions(engine, content) for content in contents]
        await fake.wait_for(
            lambda: all(len(m.reactions) == TOP_K for m in messages), WAIT_S, "reactions on every message"
        )
        assert [m.reactions for m in messages] == expected
        assert quiet.reactions == []  # a channel that was never enabled
        assert placed(bot) == TOP_K * len(messages)


async def test_a_servers_threshold_drops_the_less_likely_emojis(fake_discord, make_config, engine):
    fake = fake_discord
    content = "omg haha thanks , you are the best <3"
    probabilities = sorted(engine.predict([normalize_markup(content)])[0], reverse=True)
    between = float(probabilities[0] + probabilities[1]) / 2  # only the top emoji passes
    async with running_whymoji(fake, make_config(fake)):
        await enable(fake, fake.general)
        await answered(fake, await fake.slash(fake.moderator, fake.general, "whymoji threshold", value=between), "th")
        message = await fake.send_message(fake.general, fake.alice, content)
        await fake.wait_for(lambda: message.reactions, WAIT_S, "a reaction")
    # The bot's shutdown lets running handlers finish, so no further reaction can come now.
    assert message.reactions == expected_reactions(engine, content)[:1]


async def test_why_and_the_context_menu_answer_with_the_rendered_explanation(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)):
        text = "why do you hate me , i'm so sad"
        record = await answered(fake, await fake.slash(fake.alice, fake.general, "why", target=text), "/why")
        target = await fake.send_message(fake.general, fake.moderator, f"**great** day , thanks <@{fake.alice.id}>")
        menu = await answered(fake, await fake.message_command(fake.alice, target, CONTEXT_MENU_NAME), "menu")
        link = f"https://discord.com/channels/{fake.guild.id}/{fake.general.id}/{target.id}"
        linked = await answered(fake, await fake.slash(fake.alice, fake.general, "why", target=link), "/why link")
        public = await answered(
            fake, await fake.slash(fake.alice, fake.general, "why", target=text, public=True), "pub"
        )

    assert record.original.content == render_markdown(explain(engine, normalize_markup(text)))
    assert public.original.content == record.original.content and not public.original.flags & 64
    expected_menu = render_markdown(explain(engine, normalize_markup(target.content)))
    assert menu.original.content == expected_menu and linked.original.content == expected_menu
    for answer in (record, menu, linked):
        assert answer.callback_type == 5  # deferred: explanations may take longer than 3 s
        assert answer.original.flags & 64  # ephemeral unless asked to be public
        assert all(body["allowed_mentions"]["parse"] == [] for body in answer.bodies() if "allowed_mentions" in body)
        assert any("allowed_mentions" in body for body in answer.bodies())


async def test_settings_and_opt_out_survive_a_restart(fake_discord, make_config, engine):
    fake = fake_discord
    config = make_config(fake)
    async with running_whymoji(fake, config):
        await enable(fake, fake.general)
        topk = await answered(fake, await fake.slash(fake.moderator, fake.general, "whymoji topk", count=2), "topk")
        refused = await answered(fake, await fake.slash(fake.alice, fake.general, "whymoji topk", count=5), "refusal")
        optout = await answered(fake, await fake.slash(fake.alice, fake.general, "whymoji optout"), "optout")
    assert "2" in topk.original.content and "opted out" in optout.original.content
    assert "Manage Server" in refused.original.content

    async with running_whymoji(fake, config):  # a new bot on the same database
        from_alice = await fake.send_message(fake.general, fake.alice, "i love you so much !!")
        from_mod = await fake.send_message(fake.general, fake.moderator, "i love you so much !!")
        await fake.wait_for(lambda: len(from_mod.reactions) == 2, WAIT_S, "two reactions on the moderator's message")
        show = await answered(fake, await fake.slash(fake.moderator, fake.general, "whymoji show"), "show")
        why_alice = await answered(
            fake, await fake.message_command(fake.moderator, from_alice, CONTEXT_MENU_NAME), "refused /why"
        )
    assert from_mod.reactions == expected_reactions(engine, from_mod.content, top_k=2)
    assert from_alice.reactions == []  # opted out, still after the restart
    assert f"<#{fake.general.id}>" in show.original.content and "(topk): 2" in show.original.content
    assert "opted out" in why_alice.original.content


async def test_rate_limited_reactions_are_retried_and_none_is_lost(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        await enable(fake, fake.general)
        fake.rate_limit_reactions(4, retry_after=0.05)
        contents = [text.format(alice=fake.alice.id) for text in TEXTS[:3]]
        messages = [await fake.send_message(fake.general, fake.alice, content) for content in contents]
        await fake.wait_for(
            lambda: all(len(m.reactions) == TOP_K for m in messages), WAIT_S, "reactions after the 429s"
        )
        shed = shed_counts(bot)
    assert [m.reactions for m in messages] == [expected_reactions(engine, c) for c in contents]
    statuses = [call.status for call in fake.calls("PUT", "/reactions/")]
    assert statuses.count(429) == 4 and statuses.count(204) == TOP_K * len(messages)
    assert shed == {} and placed(bot) == TOP_K * len(messages)


async def test_a_gateway_reconnect_mid_burst_loses_no_message(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)):
        await enable(fake, fake.general)
        contents = [f"{text.format(alice=fake.alice.id)} {n}" for n, text in enumerate(TEXTS * 2)]
        messages = []
        for n, content in enumerate(contents):
            if n == 5:
                await fake.reconnect()
            messages.append(await fake.send_message(fake.general, fake.alice, content))
        await fake.wait_for(
            lambda: all(len(m.reactions) == TOP_K for m in messages), WAIT_S, "reactions on the whole burst"
        )
    assert [m.reactions for m in messages] == [expected_reactions(engine, c) for c in contents]
    assert [kind for _, _, kind in fake.gateway.connections] == ["identify", "resume"]


async def test_two_shards_each_serve_their_guild(make_config, engine):
    async with FakeDiscord(shard_count=2, lifetime_s=120) as fake:
        other = fake.add_guild("second", shard=1 - fake.shard_of(fake.guild.id))
        other_general = fake.add_channel("general", guild=other)
        fake.join(fake.moderator, other, moderator=True)
        fake.join(fake.alice, other)
        # discord.py waits 5 s before identifying the second shard (Discord's identify limit).
        async with running_whymoji(fake, make_config(fake, discord={"shard_count": 2})):
            await fake.wait_until_connected()
            await enable(fake, fake.general)
            await enable(fake, other_general)
            here = await fake.send_message(fake.general, fake.alice, "lol what a great day")
            there = await fake.send_message(other_general, fake.alice, "i miss you , i'm so sad")
            await fake.wait_for(lambda: here.reactions and there.reactions, WAIT_S, "reactions in both guilds")
    assert here.reactions == expected_reactions(engine, here.content)
    assert there.reactions == expected_reactions(engine, there.content)
    assert sorted(s.shard for s in fake.gateway.sessions.values()) == [(0, 2), (1, 2)]
    assert not fake.calls("GET", "/gateway/bot")  # a set shard count goes straight to the configured gateway
    assert fake.unknown_routes == []


async def test_a_forbidden_channel_is_skipped_and_logged_once(fake_discord, make_config, engine, caplog):
    fake = fake_discord
    locked = fake.add_channel("locked")
    fake.forbid_channel(locked)
    caplog.set_level(logging.WARNING, logger="cogs.reactions")
    async with running_whymoji(fake, make_config(fake)):
        await enable(fake, locked)
        await enable(fake, fake.general)
        await fake.send_message(locked, fake.alice, "i love you so much !!")
        await fake.wait_for(lambda: fake.calls("PUT", f"/channels/{locked.id}/"), WAIT_S, "the 403")
        await fake.wait_for(
            lambda: any("no permission to react" in r.getMessage() for r in caplog.records), WAIT_S, "the warning"
        )
        for content in ("lol what a great day", "i miss you , i'm so sad"):
            await fake.send_message(locked, fake.alice, content)
        sentinel = await fake.send_message(fake.general, fake.alice, "lol what a great day")
        await fake.wait_for(lambda: len(sentinel.reactions) == TOP_K, WAIT_S, "reactions in the open channel")
    attempts = fake.calls("PUT", f"/channels/{locked.id}/")
    assert [call.status for call in attempts] == [403]
    warnings = [r for r in caplog.records if "no permission to react" in r.getMessage()]
    assert len(warnings) == 1 and str(locked.id) in warnings[0].getMessage()


async def test_a_hostile_message_gets_a_hint_in_the_moderators_channel(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)):
        modchannel = await answered(
            fake, await fake.slash(fake.moderator, fake.general, "whymoji modchannel", channel=fake.mod_channel), "mod"
        )
        await answered(fake, await fake.slash(fake.moderator, fake.general, "whymoji modthreshold", value=0.0), "th")
        content = f"you stupid idiot <@{fake.moderator.id}> , i hate you"
        message = await fake.send_message(fake.general, fake.alice, content)
        hints = await fake.wait_for(lambda: fake.bot_messages(fake.mod_channel), WAIT_S, "a moderation hint")
    assert "Moderator hints will go to" in modchannel.original.content
    text = normalize_markup(content)
    header = hint_header(
        author_id=fake.alice.id,
        channel_id=fake.general.id,
        jump_url=f"https://discord.com/channels/{fake.guild.id}/{fake.general.id}/{message.id}",
        score=hostility(engine.predict([text])[0]),
    )
    explanation = render_markdown(explain(engine, text), limit=DISCORD_LIMIT - len(header) - 1)
    assert [hint.content for hint in hints] == [format_hint(header, explanation)]
    assert hints[0].body["allowed_mentions"]["parse"] == []
    assert message.reactions == []  # general was never enabled: hints do not need reactions


# --- the server's reaction rules: each one firing on the real bot ---------------------------


def model_runs(bot) -> float:
    """Texts the model has read (the sum of the batch sizes)."""
    return bot.metrics.registry.get_sample_value("whymoji_batch_size_sum") or 0.0


async def set_rule(fake: FakeDiscord, command: str, **options):
    return await answered(
        fake, await fake.slash(fake.moderator, fake.general, f"whymoji {command}", **options), command
    )


async def test_unreadable_messages_get_no_reactions_and_no_model_run(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        await enable(fake, fake.general)
        chinese = await fake.send_message(fake.general, fake.alice, "我今天很开心")  # the default gate: 0.5
        await fake.wait_for(lambda: shed_counts(bot).get("unreadable") == 1, WAIT_S, "the default gate")
        one_unknown = "i love you so much xylophone"  # 5 of 6 words known: passes at 0.5
        passed = await fake.send_message(fake.general, fake.alice, one_unknown)
        await fake.wait_for(lambda: len(passed.reactions) == TOP_K, WAIT_S, "reactions at the default gate")
        reply = await set_rule(fake, "minknown", value=1.0)
        stopped = await fake.send_message(fake.general, fake.alice, one_unknown)
        readable = await fake.send_message(fake.general, fake.alice, "i love you so much !!")
        await fake.wait_for(lambda: len(readable.reactions) == TOP_K, WAIT_S, "reactions on the readable message")
        await fake.wait_for(lambda: shed_counts(bot).get("unreadable") == 2, WAIT_S, "minknown 1 stopping a message")
        runs = model_runs(bot)
    assert "at least 100% of a message's words" in reply.original.content
    assert chinese.reactions == [] and stopped.reactions == []
    assert passed.reactions == expected_reactions(engine, one_unknown)
    assert runs == 2  # the gate runs before the model: only the two readable messages were predicted


async def test_distress_0_silences_every_message_and_1_turns_it_off(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        await enable(fake, fake.general)
        await set_rule(fake, "distress", value=0.0)
        contents = [text.format(alice=fake.alice.id) for text in TEXTS]
        silenced = [await fake.send_message(fake.general, fake.alice, content) for content in contents]
        await fake.wait_for(lambda: shed_counts(bot).get("distress") == len(TEXTS), WAIT_S, "every message silenced")
        off = await set_rule(fake, "distress", value=1.0)
        after = await fake.send_message(fake.general, fake.alice, contents[0])
        await fake.wait_for(lambda: len(after.reactions) == TOP_K, WAIT_S, "reactions with distress off")
    assert all(message.reactions == [] for message in silenced)
    assert after.reactions == expected_reactions(engine, contents[0])
    assert "Distress silence is off" in off.original.content
    assert [call.status for call in fake.calls("PUT", "/reactions/")] == [204] * TOP_K


async def test_a_blocked_emoji_is_replaced_by_the_next_allowed_one_above_the_threshold(
    fake_discord, make_config, engine
):
    fake = fake_discord
    content = "i love you so much !!"
    probabilities = engine.predict([normalize_markup(content)])[0]
    ranked = [int(index) for index in np.argsort(-probabilities, kind="stable")]
    # Only the top three pass the threshold; block the first, and the fourth may not fill in.
    threshold = float(probabilities[ranked[2]] + probabilities[ranked[3]]) / 2
    first = EMOJIS[ranked[0]]
    async with running_whymoji(fake, make_config(fake)):
        await enable(fake, fake.general)
        await set_rule(fake, "threshold", value=threshold)
        before = await fake.send_message(fake.general, fake.alice, content)
        await fake.wait_for(lambda: len(before.reactions) == 3, WAIT_S, "reactions before blocking")
        blocked = await set_rule(fake, "block", emojis=first.char)
        after = await fake.send_message(fake.general, fake.alice, content)
        await fake.wait_for(lambda: after.reactions, WAIT_S, "reactions after blocking")
        unblocked = await set_rule(fake, "unblock", emojis=first.reaction)
        again = await fake.send_message(fake.general, fake.alice, content)
        await fake.wait_for(lambda: len(again.reactions) == 3, WAIT_S, "reactions after unblocking")
    top_three = [EMOJIS[index].reaction for index in ranked[:3]]
    assert before.reactions == again.reactions == top_three
    assert after.reactions == top_three[1:]
    assert blocked.original.content.startswith(f"Blocked: {first.reaction}.")
    assert blocked.original.flags & 64  # private
    assert unblocked.original.content.startswith(f"Unblocked: {first.reaction}.")


async def test_a_refused_block_lists_what_was_not_understood(fake_discord, make_config):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)):
        refused = await set_rule(fake, "block", emojis="💀 gun")
        show = await set_rule(fake, "show")
    assert refused.original.content.startswith("Not changed: these are not emojis I react with: gun.")
    assert refused.original.flags & 64
    assert "(block, unblock): 🔫\n" in show.original.content  # the default list, unchanged


async def test_chance_0_silences_and_show_lists_the_rules(fake_discord, make_config):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        await enable(fake, fake.general)
        await set_rule(fake, "chance", percent=0)
        await set_rule(fake, "minknown", value=0.25)
        await set_rule(fake, "distress", value=0.9)
        await set_rule(fake, "block", emojis="💀,😈")
        messages = [await fake.send_message(fake.general, fake.alice, "lol what a great day") for _ in range(4)]
        await fake.wait_for(lambda: shed_counts(bot).get("chance") == 4, WAIT_S, "every message left out")
        show = await set_rule(fake, "show")
        runs = model_runs(bot)
    assert all(message.reactions == [] for message in messages) and runs == 0
    for line in ("(minknown): 0.25", "(block, unblock): 🔫 😈 💀", "(distress): 0.9", "(chance): 0%"):
        assert line in show.original.content
