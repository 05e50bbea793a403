"""`whymoji why`: which words made the model pick its emojis, as ``/why`` shows it.

Bold is ANSI when stdout is a terminal and ``**`` markers otherwise (pipes, files); ``--json``
gives the words, their spans in TEXT, their scores and the top emojis for other programs.
"""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli.model_options import add_model_arguments, load_engine

METHOD_CHOICES = ("occlusion", "attention")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "why",
        help="explain which words made the model pick its emojis",
        description="Score every word of TEXT by its influence on the predicted emojis. "
        "occlusion (default): how much the top-5 emojis' probability drops without the word "
        "(exact; approximate beyond 128 tokens, and then said so). attention: the model's "
        "attention weight on the word.",
    )
    parser.add_argument("text", nargs="+", metavar="TEXT", help="the message (several words are joined by spaces)")
    parser.add_argument("--method", choices=METHOD_CHOICES, default="occlusion", help="how to score words")
    parser.add_argument("--json", action="store_true", help="print the explanation as one JSON object")
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bot.explain import explain  # torch is slow to import: only when used
    from bot.render import render_terminal

    engine = load_engine(args)
    explanation = explain(engine, " ".join(args.text), args.method)
    if args.json:
        print(json.dumps(explanation.to_dict(), ensure_ascii=False))
    else:
        print(render_terminal(explanation, ansi=sys.stdout.isatty()))
    return 0
