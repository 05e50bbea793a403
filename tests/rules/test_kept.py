"""Kept explanations: bounded by bytes, least recently used out first, every eviction counted."""

from __future__ import annotations

import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.explain.explanation import Explanation, WordScore
from bot.explain.packed import PackedExplanation
from bot.metrics import Metrics
from bot.rules.kept import ENTRY_OVERHEAD, KeptExplanations

TOP = ((EMOJIS[0], 0.5), (EMOJIS[1], 0.3))


def explanation(text: str) -> Explanation:
    words = tuple(WordScore(word, 0, len(word), 0.1, True, (0.05, 0.05), TOP) for word in text.split())
    return Explanation(text, words, TOP, "occlusion")


def size(item: Explanation) -> int:
    return PackedExplanation.pack(item).nbytes + ENTRY_OVERHEAD


def evictions(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("whymoji_why_kept_evictions_total")


def test_kept_explanations_come_back_and_stay_within_their_bytes():
    items = {key: explanation(f"message number {key} " + "word " * key) for key in range(20)}
    metrics = Metrics()
    budget = sum(size(items[key]) for key in (17, 18, 19))  # room for the last three only
    kept = KeptExplanations(budget, metrics)
    for key, item in items.items():
        assert kept.keep(key, item)
        assert kept.bytes <= budget
        assert metrics.registry.get_sample_value("whymoji_why_kept_bytes") == kept.bytes
    assert [key for key in items if key in kept] == [17, 18, 19]
    assert kept.get(19) == items[19] and kept.get(3) is None
    assert evictions(metrics) == 17


def test_the_least_recently_used_goes_first():
    items = [explanation(f"same size {n}") for n in range(3)]
    kept = KeptExplanations(2 * size(items[0]), Metrics())
    kept.keep("a", items[0])
    kept.keep("b", items[1])
    assert kept.get("a") == items[0]  # "a" is now the more recent
    kept.keep("c", items[2])
    assert "a" in kept and "b" not in kept and "c" in kept


def test_keeping_again_under_a_key_replaces_without_counting_twice():
    metrics = Metrics()
    kept = KeptExplanations(10_000_000, metrics)
    first, second = explanation("one"), explanation("two words")
    kept.keep("k", first)
    kept.keep("k", second)
    assert len(kept) == 1 and kept.bytes == size(second) and kept.get("k") == second
    assert evictions(metrics) == 0


def test_too_big_to_keep_is_counted_and_leaves_the_others():
    metrics = Metrics()
    small = explanation("hi")
    kept = KeptExplanations(size(small) + 10, metrics)
    kept.keep("small", small)
    assert not kept.keep("big", explanation("word " * 500))
    assert "small" in kept and "big" not in kept and evictions(metrics) == 1
    nothing = KeptExplanations(0, Metrics())  # why.kept_bytes = 0: nothing is kept
    assert not nothing.keep("small", small) and len(nothing) == 0


def test_a_negative_budget_is_refused():
    with pytest.raises(ValueError, match="max_bytes"):
        KeptExplanations(-1)
