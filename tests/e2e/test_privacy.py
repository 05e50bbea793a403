"""End to end, what answers may show: public `/why`s never carry a message to people who cannot
read it, and every path checks the asker's permissions the same way. The real bot against the
fake Discord, whose channels carry permission overwrites as Discord's do."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from bot.explain import explain
from bot.explain.render import render_markdown
from bot.rules.markup import normalize_markup
from cogs.why import CONTEXT_MENU_NAME
from tests.e2e.support import WAIT_S, answered, enable
from tests.fake_discord import FakeDiscord, Overwrite
from tests.fake_discord.whymoji import running_whymoji
from tests.fake_discord.world import READ_MESSAGE_HISTORY, ROLE_OVERWRITE

EPHEMERAL = 64


def link(fake: FakeDiscord, message) -> str:
    return f"https://discord.com/channels/{fake.guild.id}/{message.channel_id}/{message.id}"


async def test_a_public_why_of_a_secret_channel_is_answered_privately_in_general(fake_discord, make_config, engine):
    fake = fake_discord
    keepers = fake.add_role("keepers")
    keeper = fake.add_user("keeper", roles=(keepers,))
    secret = fake.add_channel("secret", overwrites=fake.hidden_from_everyone(keepers))
    plan = fake.world.add_message(secret.id, keeper, "i love you so much !!")
    hello = fake.world.add_message(fake.general.id, fake.alice, "lol what a great day")
    thread = fake.add_thread(fake.general, "whispers", private=True, members=(keeper,))
    whisper = fake.world.add_message(thread.id, keeper, "i miss you , i'm so sad")
    async with running_whymoji(fake, make_config(fake)):

        async def ask(channel, target):  # one at a time: a person has one /why under way
            return await answered(fake, await fake.slash(keeper, channel, "why", target=target, public=True), target)

        leak = await ask(fake.general, link(fake, plan))
        inward = await ask(secret, link(fake, hello))
        at_home = await ask(secret, str(plan.id))
        whispered = await ask(fake.general, link(fake, whisper))
        records = [leak, inward, at_home, whispered]
    explained = render_markdown(explain(engine, normalize_markup(plan.content)))
    assert leak.callback_type == 5 and leak.original.flags & EPHEMERAL  # deferred privately, nothing shown
    assert leak.original.content == (
        f"-# Only you see this: not everyone who can see this channel can read <#{secret.id}>.\n{explained}"
    )
    assert whispered.original.flags & EPHEMERAL and "in a private thread" in whispered.original.content
    # Everyone in #secret can read #general, and #secret itself: those answers are public.
    assert not inward.original.flags & EPHEMERAL and not at_home.original.flags & EPHEMERAL
    assert at_home.original.content == explained
    assert all(
        body["allowed_mentions"]["parse"] == [] for r in records for body in r.bodies() if "allowed_mentions" in body
    )


async def test_without_read_message_history_no_path_explains_an_older_message(fake_discord, make_config):
    fake = fake_discord
    no_history = Overwrite(fake.guild.id, ROLE_OVERWRITE, deny=READ_MESSAGE_HISTORY)
    news = fake.add_channel("news", overwrites=(no_history,))
    old = fake.world.add_message(news.id, fake.moderator, "i love you so much !!")
    async with running_whymoji(fake, make_config(fake)) as bot:
        records = [
            await answered(fake, await fake.slash(fake.alice, news, "why", target=str(old.id)), "by ID"),
            await answered(fake, await fake.slash(fake.alice, news, "why", target=link(fake, old)), "by link"),
            await answered(fake, await fake.message_command(fake.alice, old, CONTEXT_MENU_NAME), "by menu"),
        ]
        explained = bot.metrics.why_requests._value.get()
    for record in records:
        assert "can't read this channel's message history" in record.original.content
        assert record.original.flags & EPHEMERAL
    assert explained == 0


class Everything(logging.Handler):
    """Every record of every logger, formatted as a log file would hold it (tracebacks too)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def debug_log():
    root = logging.getLogger()
    handler, level = Everything(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def message_and_interaction(fake: FakeDiscord, config) -> tuple[list[str], str, str]:
    """Run the bot at DEBUG through a message (with reactions) and a `/why` (answered with the
    text); the log's lines, the text and the interaction's token."""
    text = "i love you so much quokka marmalade"
    with debug_log() as lines:
        async with running_whymoji(fake, config):
            await enable(fake, fake.general)
            message = await fake.send_message(fake.general, fake.alice, text)
            await fake.wait_for(lambda: message.reactions, WAIT_S, "reactions")
            record = await answered(fake, await fake.slash(fake.alice, fake.general, "why", target=text), "/why")
    return lines, "quokka marmalade", record.token


async def test_the_debug_log_holds_neither_message_text_nor_interaction_tokens(fake_discord, make_config):
    fake = fake_discord
    lines, text, token = await message_and_interaction(fake, make_config(fake, logging={"level": "DEBUG"}))
    assert any("discord.gateway" in line and "MESSAGE_CREATE" in line for line in lines)  # it was logging
    assert any("/interactions/" in line for line in lines)
    assert [line for line in lines if text in line or token in line] == []
    assert [line for line in lines if fake.token in line] == []


async def test_discord_payloads_only_when_the_setting_asks_for_them(fake_discord, make_config):
    """What the redaction hides is really there: with the setting on, the log holds both."""
    fake = fake_discord
    config = make_config(fake, logging={"level": "DEBUG", "discord_payloads": True})
    lines, text, token = await message_and_interaction(fake, config)
    assert any(text in line for line in lines) and any(token in line for line in lines)
