"""`whymoji demo`: the demo page, served on this machine (Gradio, from the ``demo`` extra).

Every word of a typed message shaded by its exact effect on the emojis, as ``whymoji why``
computes it (``bot.demo``). The page is served on ``--host`` and ``--port`` (127.0.0.1:7860 by
default: this machine only) until Ctrl-C, and makes no request beyond it. The model options are
``why``'s. Gradio is imported only here, in the handler, so other commands never load it.
"""

from __future__ import annotations

import argparse
import importlib.util

from bot.cli.model_options import add_model_arguments, load_engine, load_settings
from bot.cli.output import note
from bot.demo import DEFAULT_HOST, DEFAULT_PORT
from bot.errors import WhymojiError

INSTALL_HINT = "whymoji demo needs Gradio: install the demo extra with `pip install -e '.[demo]'`"


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {port}")
    return port


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="serve the demo page: every word shaded by its effect on the emojis",
        description="Serve a page where a typed message is explained as you type: every word the "
        "model reads shaded by its exact score (or its effect on one top emoji), the top emojis, "
        "what one word does, and what the model read. Needs the demo extra (Gradio). "
        "The page makes no request beyond this server.",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, this machine only; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port to listen on (default: {DEFAULT_PORT})"
    )
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("gradio") is None:
        raise WhymojiError(INSTALL_HINT)
    from bot.demo.app import DemoServer, bind, build_demo  # imports Gradio: only here
    from bot.serving.loading import configure_torch

    config = load_settings(args)  # the one configuration every command reads
    sock = bind(args.host, args.port)  # a busy port is reported before the model loads
    try:
        # A long-running server, like the bot: its allocator settings too (explanations in several
        # threads would otherwise leave their buffers in the heap), then the engine as `why` loads it.
        configure_torch(config.model)
        engine = load_engine(config, args)
        server = DemoServer(build_demo(engine), sock)
    except BaseException:
        sock.close()
        raise
    note(f"the demo page is at {server.url} (Ctrl-C stops it)")
    server.serve()
    return 0
