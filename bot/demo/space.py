"""A Hugging Face Space's entry point: ``demo``, the page on the model the configuration names.

A Gradio Space runs its ``app.py``; with this repository in the Space, that file is two lines
(README, *The demo page*)::

    from bot.demo.space import launch
    launch()

Importing this module loads the configuration as the bot does (``$WHYMOJI_CONFIG`` if set, and
``WHYMOJI_*`` variables: a Space's variables), finds the model files as the bot does
(``model.weights`` / ``model.vocabulary``, else the Hub repository ``model.repo_id``, downloaded
into the cache on the first start) and builds ``demo``. ``launch()`` serves it with Gradio's
``launch`` (the Space sets the address) and the same options as ``whymoji demo``: no share link,
analytics, footer links or run history.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from bot.config import CONFIG_ENV, load_config
from bot.deepmoji.engine import Engine
from bot.demo.app import SERVE_OPTIONS, build_demo, gr
from bot.errors import WhymojiError
from bot.serving.loading import configure_torch, locate_model_files


def load_engine(environ: Mapping[str, str] = os.environ) -> Engine:
    """The engine the configuration in ``environ`` describes, loaded as the bot loads it."""
    config = load_config(environ.get(CONFIG_ENV) or None, environ)
    model = config.model
    configure_torch(model)  # the bot's threads and allocator settings
    files = locate_model_files(model)
    return Engine.load(files, device=model.device, max_tokens=model.max_tokens, precision=model.precision)


try:
    engine = load_engine()
except WhymojiError as error:  # a configuration or model-file problem: in words, as `whymoji run` says it
    raise SystemExit("\n".join(f"whymoji: error: {line}" for line in error.lines())) from None
demo: gr.Blocks = build_demo(engine)


def launch() -> None:
    """Serve ``demo`` as a Space does (Gradio reads the address from ``GRADIO_SERVER_NAME``/``_PORT``)."""
    demo.launch(share=False, **SERVE_OPTIONS)  # type: ignore[arg-type]


if __name__ == "__main__":
    launch()
