"""The two menus under every explanation the bot posts (``/why`` answers, moderation hints), and
what a pick in one of them says.

- **One emoji**: "All five" (today's view, the default) and each of the top five emojis with its
  probability. **One word**: up to 25 words, the most influential ones, in text order
  (``bot.explain.explore.influential_words``).
- A menu's ``custom_id`` holds what answering a pick needs, and never any text:
  ``whymoji:pick:{menu}:{p|o}:{m|t}:{guild}:{channel}:{id}``: which menu, whether the answer it
  is under is private (``p``: a pick updates it) or open to everyone (``o``: a pick is answered
  privately), and the ``Subject``: a message (server, channel and message ids, enough to read it
  again after a restart) or a typed text (only the id of the answer: the text is not stored, so a
  pick on it works only while the explanation is kept). At most 81 characters, within Discord's
  100; option labels and values are within 100 too, and a menu has at most 25 options.
- ``ExplanationMenu`` is a ``discord.ui.DynamicItem``: registered once (``bot.add_dynamic_items``,
  by the ``/why`` cog), it turns any pick in such a menu into a ``Pick`` and dispatches it as the
  ``explanation_pick`` event, even on a message posted before a restart. Answering it is the
  ``/why`` cog's (``cogs/why.py``); this module does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import discord

from bot.explain.explanation import Explanation
from bot.explain.explore import MENU_WORDS, influential_words
from bot.explain.render import score_word

#: The event a pick is dispatched as (listeners: ``on_explanation_pick(interaction, pick)``).
PICK_EVENT = "explanation_pick"
#: The emoji menu's value for today's view of the top five together.
ALL_FIVE = "all"
#: Discord's limits on a select menu: options, and characters of a label, value or custom_id.
MAX_OPTIONS = 25
MAX_CHARS = 100

PICK_TEMPLATE = (
    r"whymoji:pick:(?P<menu>[ew]):(?P<visibility>[po]):(?P<kind>[mt]):"
    r"(?P<guild>[0-9]{1,20}):(?P<channel>[0-9]{1,20}):(?P<key>[0-9]{1,20})"
)
_TEMPLATE = re.compile(PICK_TEMPLATE)


class Menu(StrEnum):
    EMOJI = "e"
    WORD = "w"


class Kind(StrEnum):
    MESSAGE = "m"
    TEXT = "t"


@dataclass(frozen=True)
class Subject:
    """What an explanation explains: a message, or a typed text known only by its answer's id.

    Also the key of the kept explanation (``bot.rules.kept``). ``guild_id`` is 0 outside a server.
    """

    kind: Kind
    guild_id: int
    channel_id: int
    key: int  # the message's id, or the id of the interaction a typed text was answered in

    @classmethod
    def message(cls, guild_id: int | None, channel_id: int, message_id: int) -> Subject:
        return cls(Kind.MESSAGE, guild_id or 0, channel_id, message_id)

    @classmethod
    def text(cls, answer_id: int) -> Subject:
        return cls(Kind.TEXT, 0, 0, answer_id)


@dataclass(frozen=True)
class Choice:
    """What an answer shows: the emoji menu's ``ALL_FIVE`` or a class index, or a word's index."""

    menu: Menu
    value: str


#: What every answer shows first.
FIRST_VIEW = Choice(Menu.EMOJI, ALL_FIVE)


@dataclass(frozen=True)
class Pick:
    """A pick: in which menu, under a private answer or not, about what, which option (its value
    and the label it had on the message, to tell whether the explanation is still the same)."""

    menu: Menu
    private: bool
    subject: Subject
    value: str
    label: str

    @property
    def choice(self) -> Choice:
        return Choice(self.menu, self.value)


def custom_id(menu: Menu, private: bool, subject: Subject) -> str:
    return (
        f"whymoji:pick:{menu}:{'p' if private else 'o'}:{subject.kind}:"
        f"{subject.guild_id}:{subject.channel_id}:{subject.key}"
    )


def parse_custom_id(value: str) -> tuple[Menu, bool, Subject] | None:
    """The menu, privacy and subject a custom_id names; None for any other custom_id."""
    match = _TEMPLATE.fullmatch(value)
    if match is None:
        return None
    return _from_match(match)


def _from_match(match: re.Match[str]) -> tuple[Menu, bool, Subject]:
    subject = Subject(Kind(match["kind"]), int(match["guild"]), int(match["channel"]), int(match["key"]))
    return Menu(match["menu"]), match["visibility"] == "p", subject


@dataclass(frozen=True)
class Option:
    """One option of a menu, as plain text (labels are plain text in Discord: nothing to escape)."""

    value: str
    label: str
    description: str | None = None
    emoji: str | None = None


def _fit(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def emoji_options(explanation: Explanation) -> list[Option]:
    options = [Option(ALL_FIVE, "All five", "Which words drive the top five together")]
    for emoji, probability in explanation.top_emojis:
        label = _fit(f"{probability:.1%} {emoji.name.replace('_', ' ')}")
        options.append(Option(str(emoji.index), label, "Which words raise and lower it", emoji.reaction))
    return options


def word_options(explanation: Explanation) -> list[Option]:
    words = explanation.words
    return [
        Option(
            str(index),
            _fit(score_word(explanation.text, words[index])),
            _fit(f"Word {index + 1} of {len(words)}, score {words[index].score:+.3f}"),
        )
        for index in influential_words(explanation, min(MENU_WORDS, MAX_OPTIONS))
    ]


def options(explanation: Explanation, menu: Menu) -> list[Option]:
    return emoji_options(explanation) if menu is Menu.EMOJI else word_options(explanation)


def explorable(explanation: Explanation) -> bool:
    """Whether the menus apply: every word has its effects (occlusion), and there is a word."""
    return bool(explanation.words) and all(word.effects is not None for word in explanation.words)


def option_for(explanation: Explanation, pick: Pick) -> Option | None:
    """The option the pick names, as the explanation would offer it now; None when it would not
    offer it, or offers it under another label (the message changed since the answer)."""
    option = next((o for o in options(explanation, pick.menu) if o.value == pick.value), None)
    if option is None or option.label.strip() != pick.label.strip():
        return None
    return option


_PLACEHOLDERS = {Menu.EMOJI: "Why this emoji? Pick one", Menu.WORD: "What does a word do? Pick one"}


class ExplanationMenu(discord.ui.DynamicItem[discord.ui.Select[discord.ui.View]], template=_TEMPLATE):
    """One of the two menus; a pick in it is dispatched as ``PICK_EVENT`` with a ``Pick``."""

    def __init__(self, item: discord.ui.Select[discord.ui.View]) -> None:
        super().__init__(item)
        parsed = parse_custom_id(item.custom_id)
        assert parsed is not None  # the template matched (DynamicItem checks it)
        self.menu, self.private, self.subject = parsed

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[discord.ui.View],
        match: re.Match[str],
        /,
    ) -> ExplanationMenu:
        if not isinstance(item, discord.ui.Select):
            raise TypeError(f"{item!r} is not a select menu")
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> None:
        value = self.item.values[0] if self.item.values else ""
        label = next((option.label for option in self.item.options if option.value == value), "")
        pick = Pick(self.menu, self.private, self.subject, value, label)
        interaction.client.dispatch(PICK_EVENT, interaction, pick)


def menus(
    explanation: Explanation, subject: Subject, *, private: bool, chosen: Choice = FIRST_VIEW
) -> discord.ui.View | None:
    """The two menus for an answer showing ``chosen``; None when the explanation has no effects."""
    if not explorable(explanation):
        return None
    view = discord.ui.View(timeout=None)
    for menu in Menu:
        select: discord.ui.Select[discord.ui.View] = discord.ui.Select(
            custom_id=custom_id(menu, private, subject),
            placeholder=_PLACEHOLDERS[menu],
            options=[
                discord.SelectOption(
                    label=option.label,
                    value=option.value,
                    description=option.description,
                    emoji=option.emoji,
                    default=Choice(menu, option.value) == chosen,
                )
                for option in options(explanation, menu)
            ],
        )
        view.add_item(ExplanationMenu(select))
    return view
