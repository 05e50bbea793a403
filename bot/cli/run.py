"""`whymoji run`: start the Discord bot from a config file (the container's entry point).

Everything that can be checked without Discord is checked before logging in (config, model
files, store, health address), with the words `whymoji check` uses. On a first start the model
files are downloaded into the cache before the gateway connects; ``--no-download`` (or
``model.offline``) turns that into a clear error instead.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path

from bot.config import CONFIG_ENV, load_config

__all__ = ["CONFIG_ENV", "add_config_argument", "add_no_download_argument", "register"]


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config PATH``, defaulting to ``$WHYMOJI_CONFIG``; neither means defaults + environment."""
    parser.add_argument(
        "--config",
        type=Path,
        default=os.environ.get(CONFIG_ENV) or None,
        metavar="PATH",
        help=f"TOML config file (default: ${CONFIG_ENV}; without one, defaults and WHYMOJI_* variables)",
    )


def add_no_download_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="never download the model files; fail if they are not already present",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the Discord bot",
        description="Run the Discord bot. The token comes from DISCORD_TOKEN or discord.token_file.",
    )
    add_config_argument(parser)
    add_no_download_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # first: a config mistake is reported before slow imports
    if not args.verbose:
        logging.getLogger().setLevel(config.logging.level)
    # Imported here so that other subcommands do not pay for importing discord.py and torch.
    from bot.app import run_bot

    asyncio.run(run_bot(config, download=not args.no_download))
    return 0
