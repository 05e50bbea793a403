"""The 64 emoji classes DeepMoji predicts, in the model's output order.

The table was read off the official picture ``shared/deepmoji/emoji_overview.png`` (Twemoji
artwork), which shows the classes in four rows of sixteen, each glyph labelled with its index:
row 1 holds 0-15, row 2 16-31, row 3 32-47, row 4 48-63, read left to right. The picture is
the truth; the emoji lists shipped inside torchMoji contain mistakes, so none of them was used.

``char`` is the character the picture shows (bare code point, as DeepMoji's training data had
it). ``reaction`` is the fully-qualified Unicode emoji that Discord accepts as a reaction:
characters whose default presentation is text (``❤ ☺ ♥ ✌``) get U+FE0F appended.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

VS16 = "\ufe0f"


@dataclass(frozen=True)
class Emoji:
    """One output class: its index in the model's 64 outputs, a CLDR-style name and glyphs."""

    index: int
    name: str
    char: str
    reaction: str

    def to_dict(self, probability: float) -> dict[str, int | str | float]:
        """This emoji with its probability as every ``--json`` output writes it (``top_emojis``)."""
        return {"index": self.index, "name": self.name, "emoji": self.reaction, "probability": probability}


_TABLE = (
    # row 1
    ("face_with_tears_of_joy", "😂", "😂"),
    ("unamused_face", "😒", "😒"),
    ("weary_face", "😩", "😩"),
    ("loudly_crying_face", "😭", "😭"),
    ("smiling_face_with_heart_eyes", "😍", "😍"),
    ("pensive_face", "😔", "😔"),
    ("ok_hand", "👌", "👌"),
    ("smiling_face_with_smiling_eyes", "😊", "😊"),
    ("red_heart", "❤", "❤" + VS16),
    ("smirking_face", "😏", "😏"),
    ("beaming_face_with_smiling_eyes", "😁", "😁"),
    ("musical_notes", "🎶", "🎶"),
    ("flushed_face", "😳", "😳"),
    ("hundred_points", "💯", "💯"),
    ("sleeping_face", "😴", "😴"),
    ("relieved_face", "😌", "😌"),
    # row 2
    ("smiling_face", "☺", "☺" + VS16),
    ("raising_hands", "🙌", "🙌"),
    ("two_hearts", "💕", "💕"),
    ("expressionless_face", "😑", "😑"),
    ("grinning_face_with_sweat", "😅", "😅"),
    ("folded_hands", "🙏", "🙏"),
    ("confused_face", "😕", "😕"),
    ("face_blowing_a_kiss", "😘", "😘"),
    ("heart_suit", "♥", "♥" + VS16),
    ("neutral_face", "😐", "😐"),
    ("person_tipping_hand", "💁", "💁"),
    ("disappointed_face", "😞", "😞"),
    ("see_no_evil_monkey", "🙈", "🙈"),
    ("tired_face", "😫", "😫"),
    ("victory_hand", "✌", "✌" + VS16),
    ("smiling_face_with_sunglasses", "😎", "😎"),
    # row 3
    ("pouting_face", "😡", "😡"),
    ("thumbs_up", "👍", "👍"),
    ("crying_face", "😢", "😢"),
    ("sleepy_face", "😪", "😪"),
    ("face_savoring_food", "😋", "😋"),
    ("face_with_steam_from_nose", "😤", "😤"),
    ("raised_hand", "✋", "✋"),
    ("face_with_medical_mask", "😷", "😷"),
    ("clapping_hands", "👏", "👏"),
    ("eyes", "👀", "👀"),
    ("pistol", "🔫", "🔫"),
    ("persevering_face", "😣", "😣"),
    ("smiling_face_with_horns", "😈", "😈"),
    ("downcast_face_with_sweat", "😓", "😓"),
    ("broken_heart", "💔", "💔"),
    # The picture shows an outline heart (U+2661, not an emoji at all): Discord cannot react
    # with it, so the reaction is the closest emoji that exists, U+1F90D white heart.
    ("white_heart_outline", "♡", "🤍"),
    # row 4
    ("headphone", "🎧", "🎧"),
    ("speak_no_evil_monkey", "🙊", "🙊"),
    ("winking_face", "😉", "😉"),
    ("skull", "💀", "💀"),
    ("confounded_face", "😖", "😖"),
    ("grinning_face_with_smiling_eyes", "😄", "😄"),
    ("winking_face_with_tongue", "😜", "😜"),
    ("angry_face", "😠", "😠"),
    ("person_gesturing_no", "🙅", "🙅"),
    ("flexed_biceps", "💪", "💪"),
    ("oncoming_fist", "👊", "👊"),
    ("purple_heart", "💜", "💜"),
    ("sparkling_heart", "💖", "💖"),
    ("blue_heart", "💙", "💙"),
    ("grimacing_face", "😬", "😬"),
    ("sparkles", "✨", "✨"),
)

EMOJIS: tuple[Emoji, ...] = tuple(
    Emoji(index, name, char, reaction) for index, (name, char, reaction) in enumerate(_TABLE)
)


def top_emojis(
    probabilities: np.ndarray, k: int, threshold: float = 0.0, *, exclude: Collection[int] = ()
) -> list[tuple[Emoji, float]]:
    """The ``k`` most likely emojis of one row, most likely first, dropping those below
    ``threshold``; ties keep class order so results are reproducible. Classes in ``exclude``
    are left out before the ``k`` are chosen, so the next ones fill in."""
    row = np.asarray(probabilities, dtype=np.float64)
    if row.shape != (len(EMOJIS),):
        raise ValueError(f"expected one row of {len(EMOJIS)} probabilities, got shape {row.shape}")
    if not 1 <= k <= len(EMOJIS):
        raise ValueError(f"k must be from 1 to {len(EMOJIS)}, got {k}")
    order = [index for index in np.argsort(-row, kind="stable") if index not in exclude][:k]
    return [(EMOJIS[index], float(row[index])) for index in order if row[index] >= threshold]
