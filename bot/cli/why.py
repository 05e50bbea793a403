"""`whymoji why`: which words made the model pick its emojis, as ``/why`` shows it.

The influential words are bold (ANSI) when stdout is a terminal and ``NO_COLOR`` is not set;
otherwise (a pipe, a file, ``NO_COLOR``) the output is plain text, without markers: the scored
words are listed under the emojis either way. ``--json`` gives the words (each token the model
read, ``word``, beside what was typed for it, ``text``, and its span in TEXT), their scores, the
top emojis and what the model read, in the same vocabulary as ``predict --json``. A long
explanation shows its progress on stderr when that is a terminal.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING, cast

from bot.cli.model_options import add_model_arguments, load_engine, load_settings
from bot.cli.output import emit, wants_ansi

if TYPE_CHECKING:
    from bot.explain import Explanation

METHOD_CHOICES = ("occlusion", "attention")

#: The ANSI styling ``render_terminal`` adds. Only ours can appear in its output: it shows every
#: control character of the message (ESC included) as U+FFFD.
_ANSI = re.compile("\x1b\\[[0-9;]*m")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "why",
        help="explain which words made the model pick its emojis",
        description="Score every word of TEXT by its influence on the predicted emojis. "
        "occlusion (default): how much the top-5 emojis' probability drops without the word "
        "(exact; the model reads at most model.max_tokens tokens, and the answer says when it cut). "
        "attention: the model's "
        "attention weight on the word.",
    )
    parser.add_argument("text", nargs="+", metavar="TEXT", help="the message (several words are joined by spaces)")
    parser.add_argument("--method", choices=METHOD_CHOICES, default="occlusion", help="how to score words")
    parser.add_argument("--json", action="store_true", help="print the explanation as one JSON object")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the explainer imports torch, which is slow to import.
    from bot.cli.progress import finish_with_progress
    from bot.explain import explain_steps
    from bot.explain.render import render_terminal

    engine = load_engine(load_settings(args), args)
    text = " ".join(args.text)
    explanation = finish_with_progress(explain_steps(engine, text, args.method), "explaining", sys.stderr)
    if args.json:
        emit(json.dumps(json_record(explanation), ensure_ascii=False))
    elif wants_ansi(sys.stdout):
        emit(render_terminal(explanation, ansi=True))
    else:
        emit(_ANSI.sub("", render_terminal(explanation, ansi=True)))  # plain text: no bold, no markers
    return 0


def json_record(explanation: Explanation) -> dict[str, object]:
    """``Explanation.to_dict`` with each word's ``text`` (what was typed) beside its ``word``
    (the token the model read: ``!!!`` is read as ``!!``, ``LOVE`` as ``love``)."""
    record = explanation.to_dict()
    entries = cast("list[dict[str, object]]", record["words"])
    record["words"] = [
        {"word": word.word, "text": explanation.text[word.start : word.end], **entry}
        for word, entry in zip(explanation.words, entries)
    ]
    return record
