"""What the end-to-end tests share: bounds, sample texts, and what to expect and count."""

from __future__ import annotations

from bot.config import Config
from bot.deepmoji.emojis import top_emojis
from bot.deepmoji.engine import Engine
from bot.rules.markup import normalize_markup
from tests.fake_discord import FakeDiscord

WAIT_S = 20.0
TOP_K = 3

TEXTS = [
    "i love you so much !!",
    "**this** is the worst day ever :(",
    "lol what a great day",
    "why do you hate me <@{alice}>",
    "omg haha thanks , you are the best <3",
    "i miss you , i'm so sad",
]


def expected_reactions(engine: Engine, content: str, top_k: int = TOP_K) -> list[str]:
    """What the bot should place: the model's top-k allowed emojis (by default all but 🔫) for
    the text it sees, best first."""
    probabilities = engine.predict([normalize_markup(content)])[0]
    picks = top_emojis(probabilities, top_k, 0.0, exclude=Config().reactions.blocked)
    return [emoji.reaction for emoji, _ in picks]


def placed(bot) -> float:
    return bot.metrics.registry.get_sample_value("whymoji_reactions_placed_total")


def shed_counts(bot) -> dict[str, float]:
    """Reason -> reactions shed, for reasons with any."""
    samples = bot.metrics.reactions_shed.collect()[0].samples
    return {s.labels["reason"]: s.value for s in samples if s.name.endswith("_total") and s.value}


async def answered(fake: FakeDiscord, record, what: str):
    await fake.wait_for(lambda: record.answered, WAIT_S, what)
    return record


async def enable(fake: FakeDiscord, channel) -> None:
    record = await answered(fake, await fake.slash(fake.moderator, channel, "whymoji enable"), "/whymoji enable")
    assert "Reactions are on" in record.original.content
