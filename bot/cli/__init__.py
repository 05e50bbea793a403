"""The ``whymoji`` command line: one module per subcommand, each with ``register(subparsers)``.

A subcommand's ``register`` adds its parser and sets ``handler`` (a function taking the parsed
namespace and returning an exit code). Errors meant for the user are ``WhymojiError``s: they
are printed as one line each (``whymoji: error: ...``) with a non-zero exit, never as a
traceback; usage errors too (exit 2). Building the parser imports neither torch nor discord:
``--help``, ``--version`` and usage errors answer at once, and each handler imports what it needs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from bot import __version__
from bot.errors import WhymojiError

#: Subcommand modules under ``bot.cli``, in the order ``--help`` lists them.
SUBCOMMANDS = ("predict", "why", "demo", "download", "run", "check", "agreement")

VERBOSE_HELP = "log debug details"


class Parser(argparse.ArgumentParser):
    """argparse with usage errors in whymoji's one-line form, pointing at ``--help``."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("whymoji").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"whymoji: error: {where}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="whymoji",
        description="Read the mood of text with DeepMoji, explain it, and run the Discord bot.",
    )
    parser.add_argument("--version", action="version", version=f"whymoji {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"bot.cli.{name}").register(subparsers)
    for subparser in subparsers.choices.values():
        # `whymoji predict -v ...` works too; SUPPRESS keeps a -v given before the command.
        subparser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def configure_logging(verbose: bool) -> None:
    """One-shot commands keep stdout and stderr for results and errors (-v shows the loading
    steps); `run` then sets the configured level for the bot's log."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # huggingface_hub gives its logger a handler of its own *and* passes records on to ours, so
    # each of its warnings (a download being retried) was printed twice: keep only ours.
    from huggingface_hub.utils import logging as hub_logging

    hub_logging.get_logger().handlers.clear()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    try:
        return args.handler(args)
    except WhymojiError as error:
        for line in error.lines():
            print(f"whymoji: error: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141  # the reader went away (`whymoji predict ... | head`): nothing to report
