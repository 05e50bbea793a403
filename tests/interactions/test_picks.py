"""The menus under an explanation: what their custom_ids carry (never text), Discord's limits,
and a pick's label telling whether the explanation is still the one the menus were made for."""

from __future__ import annotations

import discord
import pytest

from bot.deepmoji.emojis import EMOJIS
from bot.explain.explanation import Explanation, WordScore
from bot.interactions.picks import (
    ALL_FIVE,
    FIRST_VIEW,
    MAX_CHARS,
    MAX_OPTIONS,
    Choice,
    ExplanationMenu,
    Kind,
    Menu,
    Pick,
    Subject,
    custom_id,
    menus,
    option_for,
    parse_custom_id,
)

TOP = tuple((EMOJIS[index], p) for index, p in ((39, 0.4), (10, 0.2), (52, 0.1), (1, 0.05), (58, 0.05)))
BIGGEST_ID = 2**64 - 1  # snowflakes are 64-bit: at most 20 digits


def explanation_of(words: list[str], *, effects: bool = True) -> Explanation:
    scored, cursor = [], 0
    for index, word in enumerate(words):
        effect = tuple(0.001 * (index % 7) * sign for sign in (1, -1, 1, 1, -1)) if effects else None
        scored.append(WordScore(word, cursor, cursor + len(word), sum(effect or (0.1,)), True, effect, TOP))
        cursor += len(word) + 1
    return Explanation(" ".join(words), tuple(scored), TOP, "occlusion" if effects else "attention")


@pytest.mark.parametrize("private", [True, False])
@pytest.mark.parametrize(
    "subject",
    [Subject.message(BIGGEST_ID, BIGGEST_ID, BIGGEST_ID), Subject.message(None, 5, 6), Subject.text(BIGGEST_ID)],
)
def test_custom_ids_carry_the_subject_within_100_characters(subject, private):
    for menu in Menu:
        made = custom_id(menu, private, subject)
        assert len(made) <= MAX_CHARS
        assert parse_custom_id(made) == (menu, private, subject)
    assert Subject.text(7) == Subject(Kind.TEXT, 0, 0, 7) and Subject.message(None, 5, 6).guild_id == 0


@pytest.mark.parametrize(
    "other", ["whymoji:pick:x:p:m:1:2:3", "whymoji:pick:e:p:m:1:2", "menu", "whymoji:pick:e:p:m:1:2:3:4"]
)
def test_other_custom_ids_are_not_picks(other):
    assert parse_custom_id(other) is None


def test_menus_list_the_top_five_and_the_most_influential_words_within_discords_limits():
    words = [f"w{index}" for index in range(39)] + ["x" * 4000]
    explanation = explanation_of(words)
    view = menus(explanation, Subject.message(1, 2, 3), private=False)
    assert view is not None
    emoji_menu, word_menu = (item.to_component_dict() for item in view.children)
    assert [o["value"] for o in emoji_menu["options"]] == [ALL_FIVE] + [str(e.index) for e, _ in TOP]
    assert emoji_menu["options"][1]["label"] == "40.0% face with medical mask"
    assert emoji_menu["options"][1]["emoji"]["name"] == "😷"
    assert [o["default"] for o in emoji_menu["options"]] == [True] + [False] * 5  # "All five" first
    assert len(word_menu["options"]) == MAX_OPTIONS
    values = [int(o["value"]) for o in word_menu["options"]]
    assert values == sorted(values)  # in text order
    for menu in (emoji_menu, word_menu):
        assert len(menu["custom_id"]) <= MAX_CHARS and menu["custom_id"].startswith("whymoji:pick:")
        for option in menu["options"]:
            assert 1 <= len(option["label"]) <= MAX_CHARS and len(option["value"]) <= MAX_CHARS
            assert len(option.get("description") or "") <= MAX_CHARS
    assert "x" * 39 + "…" in [o["label"] for o in word_menu["options"]]  # a pasted blob, shortened


def test_no_text_is_in_a_custom_id():
    explanation = explanation_of(["secret", "words"])
    view = menus(explanation, Subject.text(99), private=True)
    for item in view.children:
        assert "secret" not in item.custom_id and "words" not in item.custom_id


def test_the_chosen_view_is_the_default_option():
    explanation = explanation_of(["a", "b", "c"])
    view = menus(explanation, Subject.text(1), private=True, chosen=Choice(Menu.WORD, "1"))
    emoji_menu, word_menu = (item.to_component_dict() for item in view.children)
    assert not any(o["default"] for o in emoji_menu["options"])
    assert [o["value"] for o in word_menu["options"] if o["default"]] == ["1"]
    assert FIRST_VIEW == Choice(Menu.EMOJI, ALL_FIVE)


def test_no_menus_without_effects():
    assert menus(explanation_of(["a", "b"], effects=False), Subject.text(1), private=True) is None


def test_menu_items_are_dynamic_and_rebuilt_from_their_custom_id():
    view = menus(explanation_of(["a", "b"]), Subject.message(1, 2, 3), private=True)
    item = view.children[0]
    assert isinstance(item, ExplanationMenu) and item.is_persistent()
    assert (item.menu, item.private, item.subject) == (Menu.EMOJI, True, Subject.message(1, 2, 3))
    match = ExplanationMenu.__discord_ui_compiled_template__.fullmatch(item.custom_id)
    assert match is not None
    rebuilt = discord.ui.Select(custom_id=item.custom_id, options=[discord.SelectOption(label="x")])
    assert ExplanationMenu(rebuilt).subject == Subject.message(1, 2, 3)


def pick(menu: Menu, value: str, label: str) -> Pick:
    return Pick(menu, True, Subject.text(1), value, label)


def test_a_pick_fits_only_the_explanation_its_menus_were_made_for():
    explanation = explanation_of(["i", "love", "you"])
    assert option_for(explanation, pick(Menu.WORD, "1", "love")) is not None
    assert option_for(explanation, pick(Menu.WORD, "1", "hate")) is None  # the message was edited
    assert option_for(explanation, pick(Menu.WORD, "9", "love")) is None
    assert option_for(explanation, pick(Menu.EMOJI, "39", "40.0% face with medical mask")) is not None
    assert option_for(explanation, pick(Menu.EMOJI, "39", "41.0% face with medical mask")) is None
    assert option_for(explanation, pick(Menu.EMOJI, "0", "10.0% face with tears of joy")) is None
    assert option_for(explanation, pick(Menu.EMOJI, ALL_FIVE, "All five")) is not None
