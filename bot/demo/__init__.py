"""The demo page (``whymoji demo``, a Hugging Face Space): every word shaded by its exact effect on the emojis.

``view`` (what the page shows, as data, read off ``bot.explain.explain``), ``render`` (that data as
inert HTML), ``page`` (a text in, the page's pieces out; bad input as a notice), ``app`` (the
Gradio app and the local server), ``space`` (a Space's entry point). Only ``app`` and ``space``
import Gradio (the ``demo`` extra); nothing but ``whymoji demo`` imports this room.
"""

#: Where ``whymoji demo`` serves by default: this machine only, Gradio's usual port.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
