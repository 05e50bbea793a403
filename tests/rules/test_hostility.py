"""hostility: bounds, monotonicity in the hostile mass, and shape errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.rules.hostility import HOSTILE_CLASSES, hostility


def _row_with_hostile_mass(mass: float) -> np.ndarray:
    """A valid softmax row putting ``mass`` on the hostile classes, the rest spread elsewhere."""
    row = np.zeros(64)
    others = [i for i in range(64) if i not in HOSTILE_CLASSES]
    row[list(HOSTILE_CLASSES)] = mass / len(HOSTILE_CLASSES)
    row[others] = (1 - mass) / len(others)
    return row


def test_hostile_classes_are_the_angry_and_violent_emojis():
    names = {EMOJIS[i].name for i in HOSTILE_CLASSES}
    assert names == {
        "pouting_face",
        "face_with_steam_from_nose",
        "pistol",
        "smiling_face_with_horns",
        "angry_face",
        "oncoming_fist",
    }


def test_score_is_the_hostile_mass():
    assert hostility(_row_with_hostile_mass(0.3)) == pytest.approx(0.3)


def test_score_rises_with_hostile_mass():
    scores = [hostility(_row_with_hostile_mass(m)) for m in np.linspace(0, 1, 11)]
    assert all(a < b for a, b in itertools.pairwise(scores))


def test_bounds():
    assert hostility(_row_with_hostile_mass(0.0)) == 0.0
    assert hostility(_row_with_hostile_mass(1.0)) == pytest.approx(1.0)
    overshoot = np.zeros(64)
    overshoot[list(HOSTILE_CLASSES)] = 0.2  # sums to 1.2: rounding must not escape [0, 1]
    assert hostility(overshoot) == 1.0


def test_mass_elsewhere_does_not_count():
    row = np.zeros(64)
    row[51] = 1.0  # skull: "dead laughing", not hostile
    assert hostility(row) == 0.0


def test_accepts_float32_model_output():
    row = np.full(64, 1 / 64, dtype=np.float32)
    assert hostility(row) == pytest.approx(6 / 64, rel=1e-5)


@pytest.mark.parametrize("shape", [(63,), (65,), (1, 64), (2, 64), ()])
def test_wrong_shape_is_an_error(shape):
    with pytest.raises(ValueError, match="64 probabilities"):
        hostility(np.zeros(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.1])
def test_invalid_values_are_errors(bad):
    row = np.full(64, 1 / 64)
    row[0] = bad
    with pytest.raises(ValueError, match="finite and non-negative"):
        hostility(row)
