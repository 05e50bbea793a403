"""What the subcommands write: results on stdout, notes on stderr, and colour only where wanted.

A result that cannot be written (``whymoji predict ... > /dev/full``, a disk that filled up)
is an ``OutputError``, one line like every other error; a reader that went away
(``whymoji predict ... | head``) ends the run quietly. Either way stdout is pointed at devnull,
so the interpreter's last flush does not fail again on the way out.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from bot.errors import WhymojiError


class OutputError(WhymojiError):
    """The results cannot be written to stdout."""


def emit(text: str) -> None:
    """Print one result and flush it, so each answer appears as soon as it is ready."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence_stdout()
        raise
    except OSError as error:
        _silence_stdout()
        raise OutputError(f"cannot write the results: {error.strerror or error}") from None


def note(text: str) -> None:
    """A remark about the run (not a result) on stderr."""
    print(f"whymoji: note: {text}", file=sys.stderr, flush=True)


def wants_ansi(stream: TextIO) -> bool:
    """ANSI styling only on a terminal, and never when ``NO_COLOR`` is set (no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _silence_stdout() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
