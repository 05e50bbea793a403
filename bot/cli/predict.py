"""`whymoji predict`: the most likely emojis of each message, from arguments or stdin.

Without TEXT arguments every line of stdin is one message, so a file of messages can be piped
through; a blank line is skipped with a note. Every line is answered as soon as it arrives: on a
terminal one by one as typed, from a pipe in batches of what has already arrived (so ``tail -f
chat.log | whymoji predict`` answers each line at once, and a file still runs in batches). The
echoed text shows control characters as U+FFFD (a message must not drive the terminal); a text
whose words the model mostly does not know (its vocabulary is English) says so, counted in the
words people typed, and a text longer than ``model.max_tokens`` tokens says it was cut.
``--json`` prints JSON Lines: one object per message, on one line each.
"""

from __future__ import annotations

import argparse
import bisect
import json
import queue
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from bot.cli.model_options import add_model_arguments, load_engine, load_settings
from bot.cli.output import emit, note
from bot.deepmoji.emojis import EMOJIS, Emoji, top_emojis
from bot.errors import WhymojiError

if TYPE_CHECKING:
    import numpy as np

    from bot.deepmoji.engine import Engine, Reading

#: Most messages per model call: large enough to batch well, small enough to print results
#: while a long file is still being read.
CHUNK_SIZE = 64
DEFAULT_TOP = 5
#: Below this share of known words, the answer says the model could hardly read the text.
FEW_KNOWN_WORDS = 0.5

_TYPED_WORD = re.compile(r"\S+")


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
        "every line of stdin is one message (blank lines are skipped), answered as it arrives.",
    )
    parser.add_argument("texts", nargs="*", metavar="TEXT", help="messages (default: stdin lines)")
    parser.add_argument(
        "--top",
        type=top_count,
        default=DEFAULT_TOP,
        metavar="K",
        help=f"emojis per message, 1 to {len(EMOJIS)} (default: {DEFAULT_TOP})",
    )
    parser.add_argument("--json", action="store_true", help="JSON Lines: one JSON object per message, one per line")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    engine = load_engine(load_settings(args), args)
    if args.texts:
        batches = _chunks(args.texts, CHUNK_SIZE)
    elif sys.stdin.isatty():
        batches = _chunks(_stdin_lines(engine, sys.stdin), 1)  # a person typing: each line at once
    else:
        batches = _arrived(_stdin_lines(engine, _read_ahead(sys.stdin)))
    write = _write_json if args.json else _write_text
    first = 0
    for batch in batches:
        for text, row in zip(batch, _predict(engine, batch, first)):
            write(text, top_emojis(row, args.top), engine, engine.read(text))
        first += len(batch)
    return 0


def _predict(engine: Engine, chunk: list[str], first: int) -> np.ndarray:
    """Probabilities of one chunk; an empty message is named by its number in the whole input."""
    from bot.deepmoji.engine import EmptyTextError  # torch is slow to import: only when used

    try:
        return engine.predict(chunk)
    except EmptyTextError as error:
        number = first + error.index + 1
        raise WhymojiError(f"message {number} is empty: {EmptyTextError.REASON}") from None


_END = object()


def _read_ahead(stream: Iterable[str]) -> queue.Queue[object]:
    """The lines of ``stream``, read by a daemon thread into a queue as they arrive, then ``_END``
    (or the exception that ended the reading). A daemon: a reader still waiting for input does
    not keep the process alive once the answers are written."""
    lines: queue.Queue[object] = queue.Queue(maxsize=4 * CHUNK_SIZE)

    def read() -> None:
        try:
            for line in stream:
                lines.put(line)
        except BaseException as error:  # handed to the main thread, which reports it
            lines.put(error)
        lines.put(_END)

    threading.Thread(target=read, name="whymoji stdin", daemon=True).start()
    return lines


def _drain(lines: queue.Queue[object]) -> Iterator[str | None]:
    """The queued lines in order, with ``None`` wherever none had arrived yet (then it waits)."""
    while True:
        try:
            item = lines.get_nowait()
        except queue.Empty:
            yield None
            item = lines.get()
        if item is _END:
            return
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, str)
        yield item


def _stdin_lines(engine: Engine, source: Iterable[str] | queue.Queue[object]) -> Iterator[str | None]:
    """The messages of stdin as they arrive (``None`` passed through: nothing more has arrived
    yet); a line with nothing to read is skipped with a note."""
    lines: Iterator[str | None] = _drain(source) if isinstance(source, queue.Queue) else iter(source)
    number = 0
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except UnicodeDecodeError as error:
            where = f", after line {number}" if number else ""
            raise WhymojiError(
                f"stdin is not UTF-8 text ({error.reason}{where}); convert it first, e.g. with iconv -f latin1 -t utf-8"
            ) from None
        if line is None:
            yield None
            continue
        number += 1
        text = line.rstrip("\r\n")
        if engine.read(text).tokens:
            yield text
        else:
            note(f"line {number} is blank: skipped")


def _arrived(messages: Iterator[str | None]) -> Iterator[list[str]]:
    """Batches of the messages that have arrived, up to ``CHUNK_SIZE``: never waits for more
    while it holds some (``None``: nothing more has arrived yet)."""
    batch: list[str] = []
    for message in messages:
        if message is not None:
            batch.append(message)
        if batch and (message is None or len(batch) == CHUNK_SIZE):
            yield batch
            batch = []
    if batch:
        yield batch


def _chunks(messages: Iterable[str | None], size: int) -> Iterator[list[str]]:
    """Consecutive chunks of ``size`` messages."""
    chunk: list[str] = []
    for message in messages:
        if message is None:
            continue
        chunk.append(message)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def typed_words(text: str, engine: Engine, reading: Reading) -> tuple[int, int]:
    """(known, total) counted in the words people typed (runs between spaces) that the model read.

    A typed word counts when one of its tokens is a word (mentions, links and numbers are not);
    it is known when none of its tokens is a word the model never learned. So ``Привет, как
    дела?`` is 3 words, none known, where the model reads 15 tokens (letters and signs).
    """
    spans = [(match.start(), match.end()) for match in _TYPED_WORD.finditer(text)]
    starts = [start for start, _ in spans]
    kinds: dict[int, bool] = {}  # typed word -> known so far
    tokenizer = engine.tokenizer
    for token in reading.tokens:
        unknown = tokenizer.is_unknown(token.id)
        if tokenizer.is_special(token.id) and not unknown:
            continue  # a mention, URL, number or line break: no word either way
        index = bisect.bisect_right(starts, token.start) - 1
        if index < 0 or token.start > spans[index][1]:
            continue
        kinds[index] = kinds.get(index, True) and not unknown
    return sum(kinds.values()), len(kinds)


def _few_known_note(known: int, total: int) -> str:
    if total == 1:
        where = "does not know the word here"
    elif known == 0:
        where = f"knows none of the {total} words here"
    else:
        where = f"knows only {known} of the {total} words here"
    return f"  (the model {where}: it learned English, so this guess is weak)"


def _write_text(text: str, picks: list[tuple[Emoji, float]], engine: Engine, reading: Reading) -> None:
    from bot.explain.render import printable  # imports the explainer, hence torch: only when used

    lines = [printable(text)]
    if reading.truncated:
        lines.append(
            f"  (long text: the model read only its first {len(reading.tokens)} of {reading.total} "
            "words and symbols, model.max_tokens)"
        )
    if reading.word_count and reading.known_share < FEW_KNOWN_WORDS:
        lines.append(_few_known_note(*typed_words(text, engine, reading)))
    lines += [f"  {p:6.1%}  {emoji.reaction}  {emoji.name}" for emoji, p in picks]
    emit("\n".join(lines))


def reading_record(reading: Reading) -> dict[str, object]:
    """``reading`` as ``why --json`` writes it (``Explanation.to_dict``): what the model read."""
    return {
        "tokens": len(reading.tokens),
        "total_tokens": reading.total,
        "truncated": reading.truncated,
        "known": reading.known,
        "words": reading.word_count,
    }


def _write_json(text: str, picks: list[tuple[Emoji, float]], engine: Engine, reading: Reading) -> None:
    record = {
        "text": text,
        "known_words": reading.known_share,
        "reading": reading_record(reading),
        "top_emojis": [emoji.to_dict(p) for emoji, p in picks],
    }
    emit(json.dumps(record, ensure_ascii=False))
