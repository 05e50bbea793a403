"""Who may start an explanation: one at a time per user, a pause per user, a cap per server."""

from __future__ import annotations

import asyncio

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


# --- /why waits in its server's line instead of being refused ----------------------------------


def queued(clock=None, **options) -> ExplanationLimits:
    settings = {"cooldown_s": 0.0, "max_per_server": 3, "clock": clock or Clock()} | options
    return ExplanationLimits(**settings)


def started(places) -> list[int]:
    return [place.user_id for place in places if place.running and not place.left]


async def test_a_burst_in_one_server_waits_in_line_and_every_request_gets_its_turn_in_order():
    limited = queued()
    places = [limited.place(GUILD, user).__enter__() for user in range(20)]  # 20 members, one second
    assert started(places) == [0, 1, 2] and limited.waiting_total() == 17
    order = []
    while places:
        running = next(place for place in places if place.running)
        await running.turn()  # returns at once for a running place
        order.append(running.user_id)
        running.__exit__(None, None, None)
        places.remove(running)
        assert len(started(places)) == min(3, len(places))
    assert order == list(range(20))


async def test_a_waiting_request_runs_when_a_place_frees():
    limited = queued(max_per_server=1)
    with limited.place(GUILD, ALICE):
        with limited.place(GUILD, BOB) as waiting:
            turn = asyncio.create_task(waiting.turn())
            await asyncio.sleep(0)
            assert not turn.done()
        # Bob's request ended while waiting (its answer was cancelled): nobody is left in line
        assert limited.waiting_total() == 0
        with limited.place(GUILD, CAROL) as carol:
            assert not carol.running
    assert limited.running_total() == 0 and limited.waiting_total() == 0
    with limited.place(GUILD, BOB) as again:  # Bob is not "busy" any more
        assert again.running


async def test_servers_take_turns_so_a_busy_one_cannot_starve_a_quiet_one():
    limited = queued(max_per_server=3, max_running=4)
    busy = [limited.place(GUILD, user).__enter__() for user in range(100, 110)]
    quiet = limited.place(OTHER_GUILD, ALICE).__enter__()
    assert started(busy) == [100, 101, 102] and quiet.running  # the quiet server had room
    quiet.__exit__(None, None, None)
    late = limited.place(OTHER_GUILD, BOB).__enter__()
    assert late.running
    third = limited.place(3, CAROL).__enter__()
    assert not third.running  # the bot is full (4): it waits its turn in its own line
    busy[0].__exit__(None, None, None)  # a place frees: the busy server's line waited first
    assert started(busy) == [101, 102, 103] and not third.running
    busy[1].__exit__(None, None, None)  # the next one: the third server's turn, not 104's
    assert third.running and started(busy) == [102, 103]
    busy[2].__exit__(None, None, None)
    assert started(busy) == [103, 104]


def test_a_long_wait_or_a_full_line_is_refused_at_once_saying_how_long():
    clock = Clock()
    limited = queued(clock, max_per_server=1, line_per_server=50, long_wait_s=30.0)
    first = limited.place(GUILD, ALICE).__enter__()
    clock.now += 4.0
    first.__exit__(None, None, None)  # explanations take 4 s here, the estimate learns
    assert 1.0 < limited.seconds_each < 4.0
    while limited.seconds_each < 3.9:
        place = limited.place(GUILD, ALICE).__enter__()
        clock.now += 4.0
        place.__exit__(None, None, None)
    holders = [limited.place(GUILD, user).__enter__() for user in range(200, 207)]  # 1 running, 6 waiting
    assert limited.estimated_wait_s(7) > 30
    with pytest.raises(ExplanationLimitReached, match=r"7 explanations to finish before yours, about 3\d s"):
        limited.place(GUILD, BOB)
    assert limited.waiting_total() == 6
    with limited.place(OTHER_GUILD, BOB) as elsewhere:  # another server with room runs at once
        assert elsewhere.running
    short = queued(max_per_server=1, line_per_server=2)
    short.place(GUILD, 1).__enter__(), short.place(GUILD, 2).__enter__(), short.place(GUILD, 3).__enter__()
    with pytest.raises(ExplanationLimitReached, match="before yours"):
        short.place(GUILD, 4)
    assert holders


async def test_one_at_a_time_and_the_pause_hold_for_waiting_requests_too():
    clock = Clock()
    limited = queued(clock, cooldown_s=10.0, max_per_server=1)
    limited.place(GUILD, BOB).__enter__()
    with limited.place(GUILD, ALICE) as waiting:
        assert not waiting.running
        with pytest.raises(ExplanationLimitReached, match="one at a time"):
            limited.place(OTHER_GUILD, ALICE)
    clock.now += 1
    with pytest.raises(ExplanationLimitReached, match="wait 9 s"):  # the pause began at admission
        limited.place(GUILD, ALICE)


async def test_closing_refuses_the_line_and_new_requests_but_lets_the_running_finish():
    limited = queued(max_per_server=1)
    with limited.place(GUILD, ALICE) as running, limited.place(GUILD, BOB) as waiting:
        turn = asyncio.create_task(waiting.turn())
        assert limited.close("I'm restarting; please ask again in a minute.") == 1
        with pytest.raises(ExplanationLimitReached, match="restarting"):
            await turn
        with pytest.raises(ExplanationLimitReached, match="restarting"):
            limited.place(OTHER_GUILD, CAROL)
        await running.turn()
    assert limited.running_total() == 0
