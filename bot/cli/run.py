"""`whymoji run`: start the Discord bot (the container's entry point).

It reads the configuration every command reads (``--config`` or ``WHYMOJI_CONFIG``, then
``WHYMOJI_<SECTION>_<KEY>``, then the model flags), checks the token with Discord, then
everything else that can be checked without connecting (model files, store, health address),
with the words `whymoji check` uses. On a first start the model files are downloaded into the
cache before the gateway connects; ``--offline`` (``model.offline``) turns that into a clear
error instead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from bot.cli.model_options import add_model_arguments, load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the Discord bot",
        description="Run the Discord bot. The token comes from DISCORD_TOKEN or discord.token_file.",
    )
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_settings(args)  # first: a config mistake is reported before slow imports
    if not args.verbose:
        logging.getLogger().setLevel(config.logging.level)
    # Imported here so that other subcommands do not pay for importing discord.py and torch.
    from bot.app import run_bot

    asyncio.run(run_bot(config))
    return 0
