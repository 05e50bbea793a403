"""The reaction rules on their own: readability gate, chance, distress silence, block list."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.rules.distress import DISTRESS_CLASSES
from bot.rules.reactions import before_model, choose_reactions, unreadable
from bot.rules.shedding import ShedReason
from bot.store import GuildSettings
from tests.cog_fakes import FakeEngine, probabilities

ENGINE = FakeEngine()
SETTINGS = GuildSettings(
    guild_id=1,
    enabled_channels=frozenset(),
    top_k=3,
    threshold=0.1,
    cooldown_s=0.0,
    mod_channel_id=None,
    mod_threshold=0.5,
    min_known=0.5,
    blocked=frozenset({42}),
    distress=0.5,
    chance=100,
)


def settings(**changes) -> GuildSettings:
    return replace(SETTINGS, **changes)


def row(*weights: tuple[int, float]) -> np.ndarray:
    """A softmax row with the given class -> probability, the rest spread evenly."""
    values = np.zeros(64)
    for index, value in weights:
        values[index] = value
    rest = [i for i in range(64) if i not in dict(weights)]
    values[rest] = (1 - values.sum()) / len(rest)
    return values


# -- the readability gate -------------------------------------------------------------------


def test_known_words_pass_the_default_gate():
    assert unreadable(ENGINE.read("i love you"), 0.5) is None


def test_text_the_model_cannot_read_is_stopped_with_its_figures():
    reading = ENGINE.read("我今天很开心 <3")  # six unknown characters, one known word
    silence = unreadable(reading, 0.5)
    assert silence.reason == ShedReason.UNREADABLE
    assert silence.detail == "the model knows 1 of 7 words, below 0.5"
    assert "我" not in silence.detail  # figures only, never the text


def test_the_gate_is_inclusive_and_one_unknown_word_fails_minknown_1():
    half = ENGINE.read("i love 我 我")
    assert half.known_share == 0.5
    assert unreadable(half, 0.5) is None
    assert unreadable(half, 0.51) is not None
    one_unknown = ENGINE.read("i love you so much xylophone")
    assert unreadable(one_unknown, 1.0) is not None
    assert unreadable(ENGINE.read("i love you so much"), 1.0) is None


def test_minknown_0_lets_everything_through():
    assert unreadable(ENGINE.read("我我我"), 0.0) is None
    assert unreadable(ENGINE.read("@user 12"), 0.0) is None  # no words at all


def test_mentions_and_numbers_are_not_words():
    reading = ENGINE.read("@user i love you 123 http://example.com")
    assert (reading.known, reading.unknown) == (3, 0)
    assert unreadable(reading, 1.0) is None


# -- the chance -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chance", "roll", "silenced"),
    [(100, 0.999999, False), (0, 0.0, True), (30, 0.29, False), (30, 0.30, True), (1, 0.0, False)],
)
def test_chance_lets_through_rolls_below_it(chance, roll, silenced):
    silence = before_model(ENGINE.read("i love you"), settings(chance=chance), roll)
    assert (silence is not None) == silenced
    if silenced:
        assert silence.reason == ShedReason.CHANCE and f"{chance}%" in silence.detail


def test_seeded_chance_reacts_to_about_its_share_of_messages():
    roll = random.Random(9).random
    reading = ENGINE.read("i love you")
    let_through = sum(before_model(reading, settings(chance=25), roll()) is None for _ in range(4000))
    assert 900 <= let_through <= 1100  # 25% of 4000, with room for the draw


def test_the_gate_comes_before_the_chance():
    silence = before_model(ENGINE.read("我我我"), settings(chance=0), 0.5)
    assert silence.reason == ShedReason.UNREADABLE


# -- distress -------------------------------------------------------------------------------


def distressed(mass: float) -> np.ndarray:
    return probabilities(*DISTRESS_CLASSES, mass=mass)


def test_distress_at_or_above_the_level_silences():
    choice = choose_reactions(distressed(0.6), settings(distress=0.5))
    assert choice.emojis == () and choice.silence.reason == ShedReason.DISTRESS
    assert choice.silence.detail.startswith("distress score 0.6")
    assert choose_reactions(distressed(0.6), settings(distress=0.7)).silence is None


def test_distress_0_silences_every_message():
    happy = probabilities(0, 4, 8)
    assert choose_reactions(happy, settings(distress=0.0)).silence.reason == ShedReason.DISTRESS


def test_distress_1_turns_the_silence_off():
    all_grief = row((3, 0.6), (46, 0.4))  # 😭 and 💔 only: a distress score of 1
    choice = choose_reactions(all_grief, settings(distress=1.0))
    assert choice.silence is None and choice.emojis == (EMOJIS[3], EMOJIS[46])
    assert choose_reactions(all_grief, settings(distress=0.99)).silence.reason == ShedReason.DISTRESS


# -- the block list -------------------------------------------------------------------------


def test_blocked_emojis_make_room_for_the_next_allowed_above_the_threshold():
    gun_first = row((42, 0.5), (8, 0.3), (4, 0.15), (0, 0.04))
    assert choose_reactions(gun_first, settings(blocked=frozenset())).emojis == (
        EMOJIS[42],
        EMOJIS[8],
        EMOJIS[4],
    )
    # 🔫 blocked: ❤️ and 😍 move up; 😂 would fill the third place but is below the threshold.
    assert choose_reactions(gun_first, settings()).emojis == (EMOJIS[8], EMOJIS[4])
    assert choose_reactions(gun_first, settings(threshold=0.0)).emojis == (EMOJIS[8], EMOJIS[4], EMOJIS[0])


def test_a_block_list_of_everything_places_nothing():
    choice = choose_reactions(probabilities(0, 4, 8), settings(blocked=frozenset(range(64))))
    assert choice.emojis == () and choice.silence is None
