"""Cooldown: bounded per-key pauses."""

from __future__ import annotations

from bot.rules.cooldown import Cooldown
from tests.conftest import Clock


def test_cooldown_blocks_a_key_until_its_pause_ends():
    clock = Clock()
    cooldown = Cooldown(clock)
    assert cooldown.try_acquire("a", 2.0)
    assert not cooldown.try_acquire("a", 2.0)
    assert cooldown.try_acquire("b", 2.0)  # keys are independent
    clock.now += 1.9
    assert not cooldown.try_acquire("a", 2.0)
    clock.now += 0.1
    assert cooldown.try_acquire("a", 2.0)


def test_zero_cooldown_never_blocks():
    cooldown = Cooldown(Clock())
    assert all(cooldown.try_acquire("a", 0.0) for _ in range(5))


def test_blocked_attempts_do_not_extend_the_pause():
    clock = Clock()
    cooldown = Cooldown(clock)
    cooldown.try_acquire("a", 2.0)
    clock.now += 1.0
    assert not cooldown.try_acquire("a", 2.0)
    clock.now += 1.0
    assert cooldown.try_acquire("a", 2.0)


def test_cooldown_memory_is_bounded_expired_first_then_oldest():
    clock = Clock()
    cooldown = Cooldown(clock, max_keys=3)
    cooldown.try_acquire("expired", 1.0)
    clock.now += 5
    for key in ("b", "c", "d"):
        cooldown.try_acquire(key, 60.0)
    assert len(cooldown) == 3
    assert cooldown.try_acquire("expired", 1.0)  # it was pruned, not blocking
    assert len(cooldown) == 3
    assert cooldown.try_acquire("b", 60.0)  # the oldest live key made room
    assert not cooldown.try_acquire("d", 60.0)
