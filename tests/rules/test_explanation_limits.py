"""Who may start an explanation: one at a time per user, a pause per user, a cap per server."""

from __future__ import annotations

import pytest

from bot.rules.cooldown import Cooldown
from bot.rules.explanation_limits import ExplanationLimitReached, ExplanationLimits
from tests.conftest import Clock

GUILD, OTHER_GUILD = 1, 2
ALICE, BOB, CAROL = 10, 11, 12


def limits(clock=None, *, cooldown_s=10.0, max_per_server=2) -> ExplanationLimits:
    return ExplanationLimits(cooldown_s=cooldown_s, max_per_server=max_per_server, clock=clock or Clock())


def test_one_explanation_at_a_time_per_user_even_across_servers():
    limited = limits(cooldown_s=0.0)
    with limited.slot(GUILD, ALICE):
        with pytest.raises(ExplanationLimitReached, match="one at a time"):
            with limited.slot(OTHER_GUILD, ALICE):
                pass
        with limited.slot(GUILD, BOB):  # somebody else may
            pass
    with limited.slot(GUILD, ALICE):  # and Alice again once hers is done
        pass


def test_a_user_waits_between_requests_and_is_told_how_long():
    clock = Clock()
    limited = limits(clock, cooldown_s=10.0)
    with limited.slot(GUILD, ALICE):
        pass
    clock.now += 3.5
    with pytest.raises(ExplanationLimitReached, match="wait 7 s"):
        with limited.slot(GUILD, ALICE):
            pass
    clock.now += 6.5
    with limited.slot(GUILD, ALICE):
        pass


def test_a_refused_request_does_not_start_a_pause():
    clock = Clock()
    limited = limits(clock, cooldown_s=10.0, max_per_server=1)
    with limited.slot(GUILD, BOB):
        with pytest.raises(ExplanationLimitReached, match="this server"):
            with limited.slot(GUILD, ALICE):
                pass
    with limited.slot(GUILD, ALICE):  # no pause: her refused request did not count
        pass


def test_a_server_has_a_cap_that_moderation_hints_count_against():
    limited = limits(cooldown_s=0.0, max_per_server=2)
    with limited.slot(GUILD), limited.slot(GUILD, ALICE):  # a hint's explanation and a /why
        with pytest.raises(ExplanationLimitReached, match="this server"):
            with limited.slot(GUILD, BOB):
                pass
        with pytest.raises(ExplanationLimitReached):
            with limited.slot(GUILD):
                pass
        with limited.slot(OTHER_GUILD, CAROL):  # other servers are not affected
            pass
    with limited.slot(GUILD, BOB):
        pass


def test_a_place_is_freed_when_the_explanation_fails():
    limited = limits(cooldown_s=0.0, max_per_server=1)
    with pytest.raises(RuntimeError):
        with limited.slot(GUILD, ALICE):
            raise RuntimeError("the model failed")
    with limited.slot(GUILD, ALICE):
        pass


def test_bad_limits_are_refused():
    with pytest.raises(ValueError):
        limits(max_per_server=0)
    with pytest.raises(ValueError):
        limits(cooldown_s=-1)


def test_cooldown_remaining():
    clock = Clock()
    cooldown = Cooldown(clock)
    assert cooldown.remaining("key") == 0.0
    cooldown.try_acquire("key", 5.0)
    clock.now += 2
    assert cooldown.remaining("key") == 3.0
    clock.now += 4
    assert cooldown.remaining("key") == 0.0
