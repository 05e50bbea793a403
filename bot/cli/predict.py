"""`whymoji predict`: the most likely emojis of each message, from arguments or stdin.

Without TEXT arguments every line of stdin is one message, so a file of messages can be piped
through; a blank line is skipped with a note. On a terminal each line is answered as soon as it
is typed; from a pipe, lines are predicted in batches. The echoed text shows control characters
as U+FFFD (a message must not drive the terminal), and a text whose words the model mostly does
not know (its vocabulary is English) says so. ``--json`` prints one JSON object per message.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TYPE_CHECKING

from bot.cli.model_options import add_model_arguments, load_engine
from bot.cli.output import emit, note
from bot.deepmoji.emojis import EMOJIS, Emoji, top_emojis
from bot.errors import WhymojiError

if TYPE_CHECKING:
    import numpy as np

    from bot.deepmoji.engine import Engine, Reading

#: Messages per model call when reading a pipe: large enough to batch well, small enough to
#: print results while a long file is still being read.
CHUNK_SIZE = 64
DEFAULT_TOP = 5
#: Below this share of known words, the answer says the model could hardly read the text.
FEW_KNOWN_WORDS = 0.5


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
        "every line of stdin is one message (blank lines are skipped).",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="messages (default: stdin lines)")
    parser.add_argument(
        "--top",
        type=top_count,
        default=DEFAULT_TOP,
        metavar="K",
        help=f"emojis per message, 1 to {len(EMOJIS)} (default: {DEFAULT_TOP})",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per message")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    engine = load_engine(args)
    if args.texts:
        messages, size = args.texts, CHUNK_SIZE
    else:
        messages, size = _stdin_lines(engine), 1 if sys.stdin.isatty() else CHUNK_SIZE
    write = _write_json if args.json else _write_text
    for first, chunk in _chunks(messages, size):
        for text, row in zip(chunk, _predict(engine, chunk, first)):
            write(text, top_emojis(row, args.top), engine.read(text))
    return 0


def _predict(engine: Engine, chunk: list[str], first: int) -> np.ndarray:
    """Probabilities of one chunk; an empty message is named by its number in the whole input."""
    from bot.deepmoji.engine import EmptyTextError  # torch is slow to import: only when used

    try:
        return engine.predict(chunk)
    except EmptyTextError as error:
        number = first + error.index + 1
        raise WhymojiError(f"message {number} is empty: {EmptyTextError.REASON}") from None


def _stdin_lines(engine: Engine) -> Iterator[str]:
    """The lines of stdin, as they arrive; one with nothing to read is skipped with a note."""
    for number, line in enumerate(sys.stdin, start=1):
        text = line.rstrip("\r\n")
        if engine.read(text).tokens:
            yield text
        else:
            note(f"line {number} is blank: skipped")


def _chunks(messages: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    """(index of the chunk's first message, the chunk) for consecutive chunks of ``size``."""
    iterator = iter(messages)
    first = 0
    while chunk := list(islice(iterator, size)):
        yield first, chunk
        first += len(chunk)


def _write_text(text: str, picks: list[tuple[Emoji, float]], reading: Reading) -> None:
    from bot.explain.render import printable  # imports the explainer, hence torch: only when used

    lines = [printable(text)]
    if reading.word_count and reading.known_share < FEW_KNOWN_WORDS:
        lines.append(
            f"  (the model knows only {reading.known} of its {reading.word_count} words: "
            "it learned English, so this guess is weak)"
        )
    lines += [f"  {p:6.1%}  {emoji.reaction}  {emoji.name}" for emoji, p in picks]
    emit("\n".join(lines))


def _write_json(text: str, picks: list[tuple[Emoji, float]], reading: Reading) -> None:
    record = {
        "text": text,
        "known_words": reading.known_share,
        "top_emojis": [emoji.to_dict(p) for emoji, p in picks],
    }
    emit(json.dumps(record, ensure_ascii=False))
