"""Which messages the features read at all."""

from __future__ import annotations

import pytest

from bot.rules.candidates import is_candidate
from tests.cog_fakes import FakeMessage


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, True),
        ({"guild": None}, False),
        ({"webhook_id": 7}, False),
        ({"system": True}, False),
    ],
)
def test_candidates(change, expected):
    message = FakeMessage("hi")
    for name, value in change.items():
        setattr(message, name, value)
    assert is_candidate(message) is expected


def test_bots_are_not_candidates():
    message = FakeMessage("hi")
    message.author.bot = True
    assert not is_candidate(message)
