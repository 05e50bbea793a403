"""A hostility score from DeepMoji's 64 emoji probabilities, for moderators' hints.

DeepMoji has no "hostile" output, but several of its emojis were used on Twitter almost only
to express anger or threats. The score is the probability mass the model puts on those classes
(indices into ``bot.deepmoji.emojis.EMOJIS``, as numbered in ``emoji_overview.png``):

- 32 pouting (red angry) face and 55 angry face: plain anger;
- 37 face with steam from nose: frustration, mostly fuming at someone;
- 42 pistol: threats and violent talk;
- 44 smiling imp: malice, "evil" intent;
- 58 oncoming fist: "fight me", punching.

Left out on purpose: the skull (51) means "I'm dead (laughing)" far more often than death, the
broken heart (46) and the sad or weary faces are hurt rather than hostile, and the unamused or
expressionless faces (1, 19) are annoyance, too mild to wake a moderator.

The mass is a probability, so the score lies in [0, 1] and rises exactly with the model's belief
that one of these emojis fits: a uniform guess gives 6/64 ~ 0.09, and ``moderation.threshold``
(default 0.5) asks for at least half of the model's belief on hostile emojis.
"""

from __future__ import annotations

import numpy as np

from bot.rules.class_mass import class_mass

#: DeepMoji class indices whose emojis express anger, threat or violence (see module doc).
HOSTILE_CLASSES: tuple[int, ...] = (32, 37, 42, 44, 55, 58)


def hostility(probabilities: np.ndarray) -> float:
    """Probability mass on ``HOSTILE_CLASSES`` (``class_mass``: a row of 64, else ``ValueError``)."""
    return class_mass(probabilities, HOSTILE_CLASSES)
