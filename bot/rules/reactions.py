"""The rules that decide whether a message gets emojis, and which: pure functions, no Discord.

A server's settings (``GuildSettings``) hold four rules on top of *topk* and *threshold*:

- the readability gate (``min_known``): the model must know at least this share of the
  message's words (``Reading.known_share``), else its probabilities are confident-looking
  noise. It runs before the model, so unreadable messages cost no inference; moderation
  hints use the same gate;
- the chance (percent): busy servers ask for fewer reactions; also before the model;
- distress silence (``distress``): no reactions on sad or hurt messages (``bot/rules/distress.py``);
  1 turns it off;
- the block list (``blocked``): those emojis are left out before the top *topk* are chosen.

Each silence carries the ``whymoji_reactions_shed`` reason and, for the DEBUG log, the figures
that decided it; never the message text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bot.deepmoji.emojis import Emoji, top_emojis
from bot.deepmoji.engine import Reading
from bot.rules.distress import distress
from bot.rules.shedding import ShedReason
from bot.store.settings import GuildSettings


@dataclass(frozen=True)
class Silence:
    """Why a message gets no reactions: the shed reason and the figures behind it."""

    reason: ShedReason
    detail: str


@dataclass(frozen=True)
class Choice:
    """The emojis to place, most likely first, or the silence that replaces them."""

    emojis: tuple[Emoji, ...] = ()
    silence: Silence | None = None


def unreadable(reading: Reading, min_known: float) -> Silence | None:
    """The gate: a silence when the model knows less than ``min_known`` of the words."""
    if reading.known_share >= min_known:
        return None
    detail = f"the model knows {reading.known} of {reading.word_count} words, below {min_known:g}"
    return Silence(ShedReason.UNREADABLE, detail)


def before_model(reading: Reading, settings: GuildSettings, roll: float) -> Silence | None:
    """What silences a message before the model runs: the gate, then the chance.

    ``roll`` is uniform in [0, 1) (``random.random()``; tests pass fixed ones): a chance of
    100 lets every message through, 0 none.
    """
    silence = unreadable(reading, settings.min_known)
    if silence is None and roll * 100 >= settings.chance:
        silence = Silence(ShedReason.CHANCE, f"not among the {settings.chance}% of messages reacted to")
    return silence


def choose_reactions(probabilities: np.ndarray, settings: GuildSettings) -> Choice:
    """The emojis a message gets once the model has spoken: none on distress, else the top
    *topk* allowed emojis at or above *threshold* (``top_emojis`` leaves the blocked out)."""
    score = distress(probabilities)
    if settings.distress < 1 and score >= settings.distress:
        return Choice(silence=Silence(ShedReason.DISTRESS, f"distress score {score:.2f} >= {settings.distress:g}"))
    picks = top_emojis(probabilities, settings.top_k, settings.threshold, exclude=settings.blocked)
    return Choice(emojis=tuple(emoji for emoji, _ in picks))
