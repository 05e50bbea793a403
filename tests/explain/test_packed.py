"""Packed explanations give back exactly what was packed, and say truthfully what they hold."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.deepmoji.engine import Engine, Reading
from bot.deepmoji.files import ModelFiles
from bot.deepmoji.tokenizer import Token
from bot.explain import explain
from bot.explain.explanation import Explanation, WordScore
from bot.explain.packed import PackedExplanation
from tests.explain.test_explain_exact import words_text


@pytest.fixture(scope="module")
def engine(small_model_dir) -> Engine:
    return Engine.load(ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"))


@pytest.mark.parametrize("length", [1, 2, 7, 40])
@pytest.mark.parametrize("method", ["occlusion", "attention"])
def test_explanations_come_back_exactly(engine, length, method):
    explanation = explain(engine, words_text(length, seed=length), method)
    unpacked = PackedExplanation.pack(explanation).unpack()
    assert unpacked == explanation
    assert [word.effects for word in unpacked.words] == [word.effects for word in explanation.words]


def test_a_cut_text_with_unknown_words_keeps_its_reading(engine):
    explanation = explain(engine, "zzkx " * 60 + "i love you")
    assert explanation.reading.truncated and explanation.reading.unknown
    assert PackedExplanation.pack(explanation).unpack().reading == explanation.reading


def test_hand_built_explanations_come_back_too():
    top = ((EMOJIS[3], 0.5), (EMOJIS[0], 0.25))
    words = (WordScore("hi", 0, 2, 0.1, True, (0.05, 0.05), top), WordScore("you", 3, 6, 0.2, False, (0.1, 0.1), top))
    plain = Explanation("hi you", words, top, "occlusion", window=16, checked=False)
    assert PackedExplanation.pack(plain).unpack() == plain
    odd_reading = Reading((Token("hey", 5, 0, 3),), total=9, known=1, unknown=0)  # not the words: kept as it is
    with_reading = Explanation("hi you", words, top, "occlusion", reading=odd_reading)
    assert PackedExplanation.pack(with_reading).unpack() == with_reading
    empty = Explanation("", (), top, "occlusion")
    assert PackedExplanation.pack(empty).unpack() == empty


def held_bytes(make, count: int = 30) -> float:
    """What ``make()`` leaves allocated, per call, by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [make() for _ in range(count)]
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return held / count


def test_nbytes_is_what_a_packed_explanation_holds_and_a_sixth_of_the_objects(engine):
    explanation = explain(engine, words_text(40, seed=4))
    packed = PackedExplanation.pack(explanation)
    held = held_bytes(lambda: PackedExplanation.pack(explanation))
    assert 0.9 * held <= packed.nbytes <= 1.25 * held  # a little over, never much under
    assert held_bytes(lambda: PackedExplanation.pack(explanation).unpack()) > 5 * packed.nbytes
