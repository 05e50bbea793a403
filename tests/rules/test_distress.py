"""distress: the mass on the sad and hurt classes, computed the way hostility's is."""

from __future__ import annotations

import numpy as np
import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.rules.class_mass import class_mass
from bot.rules.distress import DISTRESS_CLASSES, distress
from bot.rules.hostility import HOSTILE_CLASSES, hostility
from tests.cog_fakes import probabilities


def test_distress_classes_are_the_sad_and_hurt_emojis():
    assert {EMOJIS[i].char for i in DISTRESS_CLASSES} == set("😩😭😔😞😫😢😪😣😓💔😖")


def test_distress_and_hostility_do_not_overlap():
    assert not set(DISTRESS_CLASSES) & set(HOSTILE_CLASSES)


@pytest.mark.parametrize("mass", [0.0, 0.2, 0.5, 0.9])
def test_score_is_the_distress_mass(mass):
    assert distress(probabilities(*DISTRESS_CLASSES, mass=mass)) == pytest.approx(mass, abs=1e-6)


def test_mass_elsewhere_does_not_count():
    assert distress(probabilities(*HOSTILE_CLASSES, mass=1.0)) == 0.0
    row = np.zeros(64)
    row[0] = 1.0  # tears of joy: laughing, not grief
    assert distress(row) == 0.0


def test_uniform_guess():
    assert distress(np.full(64, 1 / 64, dtype=np.float32)) == pytest.approx(11 / 64, rel=1e-5)


def test_both_scores_are_class_mass():
    row = np.random.default_rng(3).dirichlet(np.ones(64))
    assert distress(row) == class_mass(row, DISTRESS_CLASSES) == pytest.approx(row[list(DISTRESS_CLASSES)].sum())
    assert hostility(row) == class_mass(row, HOSTILE_CLASSES)


@pytest.mark.parametrize("score", [distress, hostility])
def test_bad_rows_are_errors_for_both(score):
    with pytest.raises(ValueError, match="64 probabilities"):
        score(np.zeros(63))
    bad = np.full(64, 1 / 64)
    bad[5] = np.nan
    with pytest.raises(ValueError, match="finite and non-negative"):
        score(bad)
