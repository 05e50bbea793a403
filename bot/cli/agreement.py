"""`whymoji agreement`: how often int8 gives the same emojis as fp32, on your weights and messages.

Decide on ``model.precision = "int8"`` with figures: the command runs every message of a file
in both precisions and prints the share with the same top emoji and the same top-k set, the
largest probability difference, and both speeds measured side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from bot.cli.model_options import add_model_arguments, load_engine, load_settings
from bot.cli.predict import top_count
from bot.errors import WhymojiError

if TYPE_CHECKING:
    from bot.deepmoji.agreement import Agreement

DEFAULT_LIMIT = 1000
DEFAULT_TOP_K = 3  # the reactions' default emojis per message (reactions.top_k)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "agreement",
        help="measure how closely int8 follows fp32 on your messages",
        description="Run messages through the model in fp32 and in int8 (model.precision) and "
        "print how often they agree and how fast each is.",
    )
    parser.add_argument(
        "messages",
        type=Path,
        metavar="FILE",
        help='one message per line; a .jsonl file gives each line\'s "text" field',
    )
    parser.add_argument(
        "--top-k",
        type=top_count,
        default=DEFAULT_TOP_K,
        metavar="K",
        help=f"compare the K most likely emojis as a set (default: {DEFAULT_TOP_K})",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"use at most the first N messages (default: {DEFAULT_LIMIT})",
    )
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def read_messages(path: Path, limit: int) -> list[str]:
    """The first ``limit`` non-blank messages of a text or JSON-lines file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise WhymojiError(f"cannot read the messages file {path}: {reason}") from None
    messages = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                line = json.loads(line)["text"]
            except (ValueError, KeyError, TypeError):
                raise WhymojiError(f'{path}, line {number}: expected a JSON object with a "text" field') from None
            if not isinstance(line, str):
                raise WhymojiError(f'{path}, line {number}: "text" is not a string')
        messages.append(line)
        if len(messages) == limit:
            break
    return messages


def run(args: argparse.Namespace) -> int:
    # imported late: torch is slow to import
    from bot.deepmoji.agreement import measure_agreement
    from bot.deepmoji.threads import runtime_threads

    if args.limit < 1:
        raise WhymojiError(f"--limit must be at least 1, got {args.limit}")
    config = load_settings(args)
    messages = read_messages(args.messages, args.limit)
    if config.model.device != "cpu":
        raise WhymojiError(
            f'int8 runs on ONNX Runtime on the CPU only; use --device cpu (model.device is "{config.model.device}")'
        )
    engine = load_engine(config, args)  # sets the threads (model.threads, --threads)
    batch = [ids for ids in (engine.encode(text) for text in messages) if ids]
    if not batch:
        raise WhymojiError(f"{args.messages}: no message with words or symbols for the model to read")
    agreement = measure_agreement(engine.model, batch, top_k=args.top_k)
    print(report(agreement, args.messages, len(messages) - len(batch), runtime_threads()))
    return 0


def report(agreement: Agreement, source: Path, skipped: int, threads: int) -> str:
    count = agreement.messages
    rows = {
        "same top emoji:": f"{agreement.same_top / count:.1%} ({agreement.same_top} of {count})",
        f"same top-{agreement.top_k} set:": f"{agreement.same_top_k / count:.1%} ({agreement.same_top_k} of {count})",
        "largest difference:": f"{agreement.max_difference:.4f} (a probability; median per message "
        f"{agreement.median_difference:.4f})",
        "speed:": f"fp32 {agreement.fp32_per_second:.0f} messages/s, int8 {agreement.int8_per_second:.0f} "
        f"messages/s ({agreement.speedup:.2f}x), {threads} thread(s)",
    }
    heading = f"int8 against fp32 on {count} messages of {source}" + (
        f" ({skipped} without tokens skipped)" if skipped else ""
    )
    return "\n".join([heading + ":", *(f"  {label:<22}{value}" for label, value in rows.items())])
