"""`whymoji why`: which words made the model pick its emojis, as ``/why`` shows it.

Bold is ANSI when stdout is a terminal (unless ``NO_COLOR`` is set) and ``**`` markers
otherwise; ``--json`` gives the words, their spans in TEXT, their scores, the top emojis and the
share of known words, in the same vocabulary as ``predict --json``. A long explanation shows
its progress on stderr when that is a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli.model_options import add_model_arguments, load_engine
from bot.cli.output import emit, wants_ansi

METHOD_CHOICES = ("occlusion", "attention")


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

    engine = load_engine(args)
    text = " ".join(args.text)
    explanation = finish_with_progress(explain_steps(engine, text, args.method), "explaining", sys.stderr)
    if args.json:
        emit(json.dumps(explanation.to_dict(), ensure_ascii=False))
    else:
        emit(render_terminal(explanation, ansi=wants_ansi(sys.stdout)))
    return 0
