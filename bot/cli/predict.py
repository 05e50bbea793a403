"""`whymoji predict`: the most likely emojis of each message, from arguments or stdin.

Without TEXT arguments every line of stdin is one message, so a file of messages can be
piped through. ``--json`` prints one JSON object per message for other programs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING

from bot.cli.model_options import add_model_arguments, load_engine
from bot.deepmoji.emojis import EMOJIS, Emoji
from bot.errors import WhymojiError

if TYPE_CHECKING:
    import numpy as np

    from bot.deepmoji.engine import Engine

#: Messages per model call when reading stdin: large enough to batch well, small enough to
#: print results while a long file is still being read.
CHUNK_SIZE = 64
DEFAULT_TOP = 5


def top_count(value: str) -> int:
    """``--top``: an integer from 1 to the number of emoji classes."""
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {value!r}") from None
    if not 1 <= count <= len(EMOJIS):
        raise argparse.ArgumentTypeError(f"must be from 1 to {len(EMOJIS)}, got {count}")
    return count


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="print the most likely emojis of messages",
        description="Print the top emojis DeepMoji predicts for each message. Without TEXT, "
        "every line of stdin is one message.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="messages (default: stdin lines)")
    parser.add_argument(
        "--top", type=top_count, default=DEFAULT_TOP, metavar="K",
        help=f"emojis per message, 1 to {len(EMOJIS)} (default: {DEFAULT_TOP})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    messages = args.texts if args.texts else _stdin_lines()
    write = _write_json if args.json else _write_text
    for first, chunk in _chunks(messages, CHUNK_SIZE):
        for text, row in zip(chunk, _predict(engine, chunk, first)):
            write(text, engine.top(row, args.top))
    return 0


def _predict(engine: Engine, chunk: list[str], first: int) -> np.ndarray:
    """Probabilities of one chunk; an empty message is named by its number in the whole input."""
    from bot.deepmoji.engine import EmptyTextError  # torch is slow to import: only when used

    try:
        return engine.predict(chunk)
    except EmptyTextError as error:
        number = first + error.index + 1
        raise WhymojiError(f"message {number} is empty: {EmptyTextError.REASON}") from None


def _stdin_lines() -> Iterator[str]:
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _chunks(messages: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    """(index of the chunk's first message, the chunk) for consecutive chunks of ``size``."""
    iterator = iter(messages)
    first = 0
    while chunk := list(islice(iterator, size)):
        yield first, chunk
        first += len(chunk)


def _write_text(text: str, picks: list[tuple[Emoji, float]]) -> None:
    lines = [text] + [f"  {p:6.1%}  {emoji.reaction}  {emoji.name}" for emoji, p in picks]
    print("\n".join(lines), flush=True)


def _write_json(text: str, picks: list[tuple[Emoji, float]]) -> None:
    top = [
        {"index": emoji.index, "name": emoji.name, "char": emoji.char, "probability": p}
        for emoji, p in picks
    ]
    print(json.dumps({"text": text, "top": top}, ensure_ascii=False), flush=True)
