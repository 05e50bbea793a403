"""End to end: the menus under every explanation (``bot.interactions.picks``), picked through the fake
Discord as component interactions (type 3), across a restart of the bot.

Expected answers are rendered from ``explain`` on the same small seeded model, so these tests
check the wiring: which message changes, who sees what, when the model runs again, and that
every body stays within Discord's limits (the fake refuses any that does not; the fixture then
fails the test).
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.explain import explain
from bot.explain.explore import influential_words, render_emoji_markdown, render_word_markdown
from bot.explain.render import DISCORD_LIMIT, render_markdown
from bot.interactions.picks import ALL_FIVE
from bot.rules.markup import normalize_markup
from cogs.why import CHANGED, CONTEXT_MENU_NAME, EXPIRED
from tests.e2e.support import WAIT_S, answered
from tests.fake_discord import ComponentNotFound, FakeDiscord
from tests.fake_discord.interactions import InteractionRecord
from tests.fake_discord.whymoji import running_whymoji

EPHEMERAL = 1 << 6
UPDATE, DEFERRED_UPDATE, MESSAGE, DEFERRED_MESSAGE = 7, 6, 4, 5
CONTENT = "why do you hate me , i'm so sad"


def menus_of(fake: FakeDiscord, message) -> tuple[str, str]:
    """The custom_ids of the emoji menu and the word menu under ``message``."""
    found = list(fake.selects(message))
    assert len(found) == 2 and ":e:" in found[0] and ":w:" in found[1], found
    return found[0], found[1]


def defaults(fake: FakeDiscord, message) -> list[str]:
    """The option shown as chosen in each menu under ``message``."""
    return [o["value"] for menu in fake.selects(message).values() for o in menu["options"] if o.get("default")]


async def settled(fake: FakeDiscord, record: InteractionRecord, what: str = "the pick's answer") -> InteractionRecord:
    """Wait until a pick's answer is visible: an update or message at once, or after a deferral
    the edit or followup."""

    def visible() -> bool:
        return any(
            (kind == "callback" and body.get("type") in (UPDATE, MESSAGE)) or kind in ("followup", "edit_original")
            for kind, body in record.responses
        )

    await fake.wait_for(visible, WAIT_S, what)
    return record


def explanations_run(bot) -> float:
    return (
        bot.metrics.registry.get_sample_value("whymoji_worker_requests_total", {"kind": "explain", "outcome": "done"})
        or 0.0
    )


def picks(bot) -> dict[str, float]:
    samples = bot.metrics.why_picks.collect()[0].samples
    return {s.labels["answer"]: s.value for s in samples if s.name.endswith("_total") and s.value}


def link(fake: FakeDiscord, message) -> str:
    return f"https://discord.com/channels/{fake.guild.id}/{message.channel_id}/{message.id}"


async def test_picks_update_a_private_answer_at_once_from_the_kept_explanation(fake_discord, make_config, engine):
    fake = fake_discord
    async with running_whymoji(fake, make_config(fake)) as bot:
        target = await fake.send_message(fake.general, fake.moderator, CONTENT)
        answer = await answered(fake, await fake.message_command(fake.alice, target, CONTEXT_MENU_NAME), "menu")
        first_defaults = defaults(fake, answer.original)
        emoji_menu, word_menu = menus_of(fake, answer.original)
        explanation = explain(engine, normalize_markup(CONTENT))
        second = explanation.top_emojis[1][0]
        word = influential_words(explanation)[0]
        runs = explanations_run(bot)
        shown = []
        for menu, value in ((emoji_menu, str(second.index)), (word_menu, str(word)), (emoji_menu, ALL_FIVE)):
            pick = await settled(fake, await fake.pick(fake.alice, answer.original, menu, value))
            shown.append((pick, answer.original.content, defaults(fake, answer.original)))
        runs_after, counted = explanations_run(bot) - runs, picks(bot)
    assert first_defaults == [ALL_FIVE]  # the first answer shows all five
    expected = [
        (render_emoji_markdown(explanation, second.index), [str(second.index)]),
        (render_word_markdown(explanation, word), [str(word)]),
        (render_markdown(explanation), [ALL_FIVE]),
    ]
    for (pick, content, chosen), (wanted, wanted_default) in zip(shown, expected):
        assert pick.callback_type == UPDATE  # answered at once, by updating the private answer
        assert pick.original is answer.original and content == wanted and chosen == wanted_default
        assert pick.responses[0][1]["data"]["allowed_mentions"] == {"parse": []}
    assert answer.original.flags & EPHEMERAL and answer.original.visible_to == fake.alice.id
    assert runs_after == 0 and counted == {"kept": 3}  # no model run for any pick


async def test_a_pick_on_a_public_answer_is_answered_privately_and_the_answer_stays(fake_discord, make_config, engine):
    fake = fake_discord
    bob = fake.add_user("bob")
    async with running_whymoji(fake, make_config(fake)) as bot:
        public = await answered(
            fake, await fake.slash(fake.alice, fake.general, "why", target=CONTENT, public=True), "p"
        )
        before = (public.original.content, [dict(row) for row in public.original.components])
        emoji_menu, _ = menus_of(fake, public.original)
        explanation = explain(engine, normalize_markup(CONTENT))
        top = explanation.top_emojis[0][0]
        pick = await settled(fake, await fake.pick(bob, public.original, emoji_menu, str(top.index)))
        private = pick.original
        _, private_words = menus_of(fake, private)
        word = influential_words(explanation)[-1]
        again = await settled(fake, await fake.pick(bob, private, private_words, str(word)))
        with pytest.raises(ComponentNotFound, match="ephemeral"):
            await fake.pick(fake.alice, private, private_words, str(word))  # bob's answer is bob's alone
        counted = picks(bot)
    assert not public.original.flags & EPHEMERAL
    assert (public.original.content, public.original.components) == before  # unchanged by bob's picks
    assert pick.callback_type == MESSAGE and private.flags & EPHEMERAL and private.visible_to == bob.id
    assert ":p:" in private_words  # picks in bob's private answer update it
    assert again.callback_type == UPDATE and again.original is private
    assert private.content == render_word_markdown(explanation, word)
    assert counted == {"kept": 2}


async def test_after_a_restart_a_pick_explains_the_message_again_once(fake_discord, make_config, engine):
    fake = fake_discord
    config = make_config(fake)
    async with running_whymoji(fake, config):
        target = await fake.send_message(fake.general, fake.moderator, CONTENT)
        answer = await answered(fake, await fake.message_command(fake.alice, target, CONTEXT_MENU_NAME), "menu")
    emoji_menu, word_menu = menus_of(fake, answer.original)
    explanation = explain(engine, normalize_markup(CONTENT))
    word = influential_words(explanation)[1]
    async with running_whymoji(fake, config) as bot:  # a new process: nothing is kept
        first = await settled(fake, await fake.pick(fake.alice, answer.original, word_menu, str(word)))
        after_first = answer.original.content
        top = explanation.top_emojis[0][0]
        second = await settled(fake, await fake.pick(fake.alice, answer.original, emoji_menu, str(top.index)))
        runs, counted = explanations_run(bot), picks(bot)
    assert first.callback_type == DEFERRED_UPDATE  # acknowledged before reading and explaining
    assert [kind for kind, _ in first.responses] == ["callback", "edit_original"]
    assert after_first == render_word_markdown(explanation, word)
    assert second.callback_type == UPDATE and answer.original.content == render_emoji_markdown(explanation, top.index)
    assert runs == 1 and counted == {"recomputed": 1, "kept": 1}


async def test_a_hints_menus_answer_each_moderator_privately_before_and_after_a_restart(
    fake_discord, make_config, engine
):
    fake = fake_discord
    config = make_config(fake)
    content = f"you stupid idiot <@{fake.moderator.id}> , i hate you"
    async with running_whymoji(fake, config):
        for command, options in (("modchannel", {"channel": fake.mod_channel}), ("modthreshold", {"value": 0.0})):
            await answered(fake, await fake.slash(fake.moderator, fake.general, f"whymoji {command}", **options), "x")
        await fake.send_message(fake.general, fake.alice, content)
        (hint,) = await fake.wait_for(lambda: fake.bot_messages(fake.mod_channel), WAIT_S, "a moderation hint")
        emoji_menu, word_menu = menus_of(fake, hint)
        before = hint.content
        explanation = explain(engine, normalize_markup(content))
        top = explanation.top_emojis[0][0]
        kept = await settled(fake, await fake.pick(fake.moderator, hint, emoji_menu, str(top.index)))
    word = influential_words(explanation)[0]
    async with running_whymoji(fake, config):
        again = await settled(fake, await fake.pick(fake.moderator, hint, word_menu, str(word)))
        await fake.wait_for(lambda: again.original.content, WAIT_S, "the recomputed answer")
    assert hint.content == before and not hint.flags & EPHEMERAL  # the hint itself never changes
    assert kept.callback_type == MESSAGE and kept.original.flags & EPHEMERAL
    assert kept.original.content == render_emoji_markdown(explanation, top.index)
    assert again.callback_type == DEFERRED_MESSAGE and again.original.flags & EPHEMERAL  # "thinking...", privately
    assert again.original.content == render_word_markdown(explanation, word)
    assert again.original.visible_to == fake.moderator.id


@pytest.mark.parametrize("public", [True, False])
async def test_a_typed_text_cannot_come_back_after_a_restart(fake_discord, make_config, public):
    fake = fake_discord
    bob = fake.add_user("bob")
    config = make_config(fake)
    async with running_whymoji(fake, config):
        answer = await answered(
            fake, await fake.slash(fake.alice, fake.general, "why", target=CONTENT, public=public), "/why"
        )
    content = answer.original.content
    emoji_menu, _ = menus_of(fake, answer.original)
    picker = bob if public else fake.alice
    async with running_whymoji(fake, config) as bot:
        pick = await fake.pick(picker, answer.original, emoji_menu, ALL_FIVE)
        await fake.wait_for(lambda: pick.followups, WAIT_S, "the note")
        runs, counted = explanations_run(bot), picks(bot)
    assert pick.callback_type == UPDATE and pick.responses[0][1]["data"]["components"] == []
    assert answer.original.components == [] and answer.original.content == content  # the menus go, the text stays
    (note,) = pick.followups
    assert note.content == EXPIRED and note.flags & EPHEMERAL and note.visible_to == picker.id
    assert runs == 0 and counted == {"expired": 1}


async def pick_after_restart(fake: FakeDiscord, config, answer, picker) -> tuple[InteractionRecord, dict[str, float]]:
    async with running_whymoji(fake, config) as bot:
        emoji_menu, _ = menus_of(fake, answer.original)
        pick = await settled(fake, await fake.pick(picker, answer.original, emoji_menu, ALL_FIVE), "a refusal")
        await fake.wait_for(lambda: pick.original and pick.original.content, WAIT_S, "the refusal's text")
        return pick, {**picks(bot), "runs": explanations_run(bot)}


async def test_after_a_restart_the_picker_is_checked_like_an_asker(fake_discord, make_config, engine):
    """A public answer shows what it explains to everyone; reading the message again for a
    picker checks the picker: an author who opted out, a message that is gone. A private
    thread's message is answered publicly only inside that thread, where Discord lets only those
    who can read it pick (its refusal for anyone else is tested in tests/cogs/test_why.py)."""
    fake = fake_discord
    bob = fake.add_user("bob")
    secret = fake.add_thread(fake.general, "secret", private=True, members=(fake.alice,))
    in_thread = fake.world.add_message(secret.id, fake.alice, CONTENT)
    config = make_config(fake)
    answers: dict[str, Any] = {}
    async with running_whymoji(fake, config):
        from_mod = await fake.send_message(fake.general, fake.moderator, "i love you so much !!")
        gone = await fake.send_message(fake.general, fake.moderator, "lol what a great day")
        # A public answer quotes a private thread's message only inside that thread (issue 20).
        for name, message, where in (
            ("thread", in_thread, secret),
            ("opted out", from_mod, fake.general),
            ("gone", gone, fake.general),
        ):
            record = await fake.slash(fake.alice, where, "why", target=link(fake, message), public=True)
            answers[name] = await answered(fake, record, name)
        await answered(fake, await fake.slash(fake.moderator, fake.general, "whymoji optout"), "optout")
    del fake.world.messages[gone.id]

    member_thread, thread_counts = await pick_after_restart(fake, config, answers["thread"], fake.alice)
    allowed_thread, _ = await pick_after_restart(fake, config, answers["thread"], fake.moderator)  # manages threads
    refused_author, _ = await pick_after_restart(fake, config, answers["opted out"], bob)
    own_message, _ = await pick_after_restart(fake, config, answers["opted out"], fake.moderator)  # the author
    refused_gone, _ = await pick_after_restart(fake, config, answers["gone"], bob)

    assert member_thread.original.content == render_markdown(explain(engine, CONTENT))
    assert thread_counts == {"recomputed": 1, "runs": 1}
    assert allowed_thread.original.content == render_markdown(explain(engine, CONTENT))
    assert "opted out" in refused_author.original.content
    assert own_message.original.content == render_markdown(explain(engine, "i love you so much !!"))
    assert "couldn't find that message" in refused_gone.original.content
    for pick in (member_thread, allowed_thread, refused_author, own_message, refused_gone):
        assert pick.callback_type == DEFERRED_MESSAGE and pick.original.flags & EPHEMERAL  # privately, at once
    for name, answer in answers.items():
        assert fake.selects(answer.original), name  # the public answers keep their menus


async def test_menus_and_answers_stay_within_discords_limits(fake_discord, make_config, engine):
    """A long message of many distinct words, one a pasted blob: 25 words offered, every body
    accepted by the fake's checks of Discord's limits (content, labels, values, custom_ids)."""
    fake = fake_discord
    words = "the and you for to it is my of that in this me so love lol what not be just was have on like your"
    content = f"{words} no do all are but {'z' * 1500} hate happy sad angry wow good bad great day much <@1> @everyone"
    async with running_whymoji(fake, make_config(fake)):
        answer = await answered(fake, await fake.slash(fake.alice, fake.general, "why", target=content), "/why")
        emoji_menu, word_menu = menus_of(fake, answer.original)
        options = fake.selects(answer.original)[word_menu]["options"]
        shown = []
        for option in options[:3] + options[-3:]:
            pick = await settled(fake, await fake.pick(fake.alice, answer.original, word_menu, option["value"]))
            shown.append(answer.original.content)
        for option in fake.selects(answer.original)[emoji_menu]["options"]:
            await settled(fake, await fake.pick(fake.alice, answer.original, emoji_menu, option["value"]))
            shown.append(answer.original.content)
    explanation = explain(engine, normalize_markup(content))
    assert len(explanation.words) == 40 and len(options) == 25
    assert [int(option["value"]) for option in options] == influential_words(explanation)
    assert all(len(text) <= DISCORD_LIMIT for text in shown)
    assert "@everyone" not in "".join(shown).replace("\\@everyone", "") and pick.callback_type == UPDATE
    assert fake.invalid_bodies == []


async def test_menus_of_a_message_edited_since_ask_for_a_new_why(fake_discord, make_config, engine):
    fake = fake_discord
    config = make_config(fake)
    async with running_whymoji(fake, config):
        target = await fake.send_message(fake.general, fake.alice, "i love you so much !!")
        answer = await answered(fake, await fake.message_command(fake.alice, target, CONTEXT_MENU_NAME), "menu")
    content = answer.original.content
    _, word_menu = menus_of(fake, answer.original)
    target.content = "i hate you so much !!"  # edited while the bot was away
    async with running_whymoji(fake, config):
        pick = await fake.pick(fake.alice, answer.original, word_menu, "1")  # "love", as the menu says
        await fake.wait_for(lambda: pick.followups, WAIT_S, "the note")
    assert pick.followups[0].content == CHANGED and pick.followups[0].flags & EPHEMERAL
    assert answer.original.content == content  # not the explanation of another text under "love"
