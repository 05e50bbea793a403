"""ThrottledLog: the first occurrence of a kind at once, then one line per interval with a count."""

from __future__ import annotations

import logging

from bot.throttled_log import ThrottledLog


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_and_interval_saying_how_many_it_stands_for(caplog):
    clock = FakeClock()
    throttled = ThrottledLog(logging.getLogger("test.throttled"), interval_s=30.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="test.throttled"):
        written = [throttled.log("store", logging.WARNING, "store failed: %s", "timeout") for _ in range(50)]
        assert throttled.log("model", logging.ERROR, "model failed")  # another kind is not held back
        clock.now = 29.0
        assert not throttled.log("store", logging.WARNING, "store failed: %s", "timeout")
        clock.now = 30.0
        assert throttled.log("store", logging.WARNING, "store failed: %s", "refused")
        clock.now = 100.0
        assert throttled.log("store", logging.WARNING, "store failed: %s", "refused")
    assert written == [True] + [False] * 49
    assert [record.getMessage() for record in caplog.records] == [
        "store failed: timeout",
        "model failed",
        "store failed: refused (and 50 more like it since the last report)",
        "store failed: refused",
    ]
