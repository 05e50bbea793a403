"""The ``whymoji`` command line: one module per subcommand, each with ``register(subparsers)``.

A subcommand's ``register`` adds its parser and sets ``handler`` (a function taking the parsed
namespace and returning an exit code). Errors meant for the user are ``WhymojiError``s: they
are printed as one line with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from bot import __version__
from bot.errors import WhymojiError

#: Subcommand modules under ``bot.cli``, in the order ``--help`` lists them.
SUBCOMMANDS = ("predict", "why", "download", "run", "check", "agreement")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whymoji",
        description="Read the mood of text with DeepMoji, explain it, and run the Discord bot.",
    )
    parser.add_argument("--version", action="version", version=f"whymoji {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"bot.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # One-shot commands keep stdout and stderr for results and errors (-v shows the loading
    # steps); `run` sets the configured level for the bot's log.
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except WhymojiError as error:
        print(f"whymoji: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`whymoji predict ... | head`): not an error worth a traceback.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
