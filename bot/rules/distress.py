"""A distress score from DeepMoji's 64 emoji probabilities: when the reactions stay quiet.

"my dog died this morning" gets 😭 💔 😢 from the model, which is right about the message and
wrong as a reaction: placed by a bot under someone's bad news, a crying face reads as mockery.
The score is the probability mass the model puts on the sad and hurt classes (indices into
``bot.deepmoji.emojis.EMOJIS``, as numbered in ``emoji_overview.png``):

- 3 loudly crying face and 34 crying face: tears. 😭 is also Twitter's "I'm crying (laughing)",
  so some happy messages score too; that costs a few missing reactions, while leaving it out
  would put 😭 under grief, the very case this score is for;
- 35 sleepy face: the picture draws it with a big drop at the nose, and it is read and used
  as a tear far more often than for sleep;
- 5 pensive and 27 disappointed face: quiet sadness;
- 46 broken heart: loss and heartbreak;
- 2 weary, 29 tired, 43 persevering and 52 confounded face: anguish, being worn down,
  "I can't take this anymore";
- 45 downcast face with sweat: dejection under stress.

Left out on purpose: the unamused, expressionless, neutral and confused faces (1, 19, 25, 22)
are mild annoyance or indifference; the flushed face (12) is embarrassment; the skull (51) means
"I'm dead (laughing)"; the folded hands (21) are how people answer bad news (sympathy, thanks,
prayer), not how they tell it; the masked face (39) is about colds as often as anything worse;
the angry faces belong to ``bot/hostility.py``.

A uniform guess gives 11/64 ~ 0.17; ``reactions.distress`` (default 0.5) silences a message
when at least half of the model's belief is on these emojis.
"""

from __future__ import annotations

import numpy as np

from bot.rules.class_mass import class_mass

#: DeepMoji class indices whose emojis express sadness, grief or anguish (see module doc).
DISTRESS_CLASSES: tuple[int, ...] = (2, 3, 5, 27, 29, 34, 35, 43, 45, 46, 52)


def distress(probabilities: np.ndarray) -> float:
    """Probability mass on ``DISTRESS_CLASSES`` (``class_mass``: a row of 64, else ``ValueError``)."""
    return class_mass(probabilities, DISTRESS_CLASSES)
