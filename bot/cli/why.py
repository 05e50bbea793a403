"""`whymoji why`: which words made the model pick its emojis, as ``/why`` shows it.

Bold is ANSI when stdout is a terminal (unless ``NO_COLOR`` is set); otherwise (a pipe, a
file, ``NO_COLOR``) the output is plain text, without markers: the scored words are listed with
their scores either way. ``--json`` gives the words (each token the model read, ``word``, beside
what was typed for it, ``text``, and its span in TEXT), their scores, each word's signed effects
on the top emojis and the top five without it, the top emojis and what the model read, in the
same vocabulary as ``predict --json``. ``--emoji E`` shows why one of the top five emojis (E
typed as the emoji, its name or its class index): the words that raise it most (bold) and lower
it most (underlined); ``--word W`` shows what one word does (W as typed in TEXT, or its index in
``--json``'s ``words``, from 0). A long explanation shows its progress on stderr when that is a
terminal.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING

from bot.cli.model_options import add_model_arguments, load_engine, load_settings
from bot.cli.output import emit, wants_ansi
from bot.errors import WhymojiError

if TYPE_CHECKING:
    from bot.deepmoji.emojis import Emoji
    from bot.deepmoji.tokenizer import Token
    from bot.explain.explanation import Explanation

METHOD_CHOICES = ("occlusion", "attention")

#: The ANSI styling ``render_terminal`` adds. Only ours can appear in its output: it shows every
#: control character of the message (ESC included) as U+FFFD.
_ANSI = re.compile("\x1b\\[[0-9;]*m")


class PickError(WhymojiError):
    """An ``--emoji`` or ``--word`` that does not name one of this text's emojis or words."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "why",
        help="explain which words made the model pick its emojis",
        description="Score every word of TEXT by its influence on the predicted emojis. "
        "occlusion (default): how much the top-5 emojis' probability drops without the word "
        "(exact; the model reads at most model.max_tokens tokens, and the answer says when it cut). "
        "attention: the model's "
        "attention weight on the word. --emoji and --word (occlusion only) explore one emoji or one word.",
    )
    parser.add_argument("text", nargs="+", metavar="TEXT", help="the message (several words are joined by spaces)")
    parser.add_argument("--method", choices=METHOD_CHOICES, default="occlusion", help="how to score words")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the explanation as one JSON object")
    shown.add_argument(
        "--emoji",
        metavar="E",
        help="why one of the top five emojis: the words that raise and lower it most "
        "(E: the emoji, its name such as face_with_tears_of_joy, or its class index 0-63)",
    )
    shown.add_argument(
        "--word",
        metavar="W",
        help="what one word does to each top emoji, and the top five without it "
        "(W: the word as typed in TEXT, or its index in --json's words, from 0)",
    )
    add_model_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: the explainer imports torch, which is slow to import.
    from bot.cli.progress import finish_with_progress
    from bot.explain import explain_steps
    from bot.explain.explore import render_emoji_terminal, render_word_terminal
    from bot.explain.render import render_terminal

    exploring = args.emoji is not None or args.word is not None
    if exploring and args.method != "occlusion":
        raise PickError("--emoji and --word need --method occlusion: attention does not measure each emoji")
    emoji = None if args.emoji is None else emoji_class(args.emoji)
    engine = load_engine(load_settings(args), args)
    text = " ".join(args.text)
    steps = explain_steps(engine, text, args.method)  # an empty text is refused here, first
    word = None if args.word is None else word_index(args.word, text, engine.read(text).tokens)
    explanation = finish_with_progress(steps, "explaining", sys.stderr)
    ansi = wants_ansi(sys.stdout)
    if args.json:
        emit(json.dumps(explanation.to_dict(), ensure_ascii=False))
    elif emoji is not None:
        check_in_top_five(emoji, explanation)
        emit(plain_unless(ansi, render_emoji_terminal(explanation, emoji.index, ansi=True)))
    elif word is not None:
        emit(plain_unless(ansi, render_word_terminal(explanation, word, ansi=True)))
    else:
        emit(plain_unless(ansi, render_terminal(explanation, ansi=True)))
    return 0


def plain_unless(ansi: bool, styled: str) -> str:
    """``styled`` on a terminal; elsewhere plain text, without bold or markers."""
    return styled if ansi else _ANSI.sub("", styled)


def emoji_class(typed: str) -> Emoji:
    """The class ``typed`` names: the emoji itself, its name, or its class index."""
    from bot.deepmoji.emoji_parsing import parse_emojis
    from bot.deepmoji.emojis import EMOJIS

    wanted = typed.strip()
    if wanted.isdecimal():
        if int(wanted) < len(EMOJIS):
            return EMOJIS[int(wanted)]
        raise PickError(f"--emoji {typed}: class indices go from 0 to {len(EMOJIS) - 1}")
    name = wanted.lower().replace(" ", "_").replace("-", "_")
    for emoji in EMOJIS:
        if emoji.name == name:
            return emoji
    parsed = parse_emojis(wanted)
    if len(parsed.emojis) == 1 and not parsed.not_understood:
        return parsed.emojis[0]
    raise PickError(
        f"--emoji {typed}: not one of DeepMoji's 64 emojis; give one emoji, its name "
        "(such as face_with_tears_of_joy) or its class index"
    )


def check_in_top_five(emoji: Emoji, explanation: Explanation) -> None:
    if all(top.index != emoji.index for top, _ in explanation.top_emojis):
        listed = ", ".join(
            f"{top.reaction} {top.name} ({top.index}) {probability:.1%}" for top, probability in explanation.top_emojis
        )
        raise PickError(f"--emoji {emoji.reaction} {emoji.name} is not one of the top five here: {listed}")


def word_index(typed: str, text: str, tokens: tuple[Token, ...]) -> int:
    """The index of the word ``typed`` names among the words the model reads of ``text``: the
    word as typed (exactly, else ignoring case), else an index. One typed twice is ambiguous."""
    written = [text[token.start : token.end] for token in tokens]
    found = [index for index, word in enumerate(written) if word == typed]
    if not found:
        folded = typed.casefold()
        found = [
            index
            for index, (word, token) in enumerate(zip(written, tokens))
            if folded in (word.casefold(), token.word.casefold())
        ]
    if len(found) == 1:
        return found[0]
    if found:
        where = ", ".join(str(index) for index in found)
        raise PickError(
            f"--word {typed!r} is here {len(found)} times (words {where}); give the index of the one you mean"
        )
    if typed.strip().isdecimal():
        if int(typed) < len(tokens):
            return int(typed)
        raise PickError(f"--word {typed}: the model reads {len(tokens)} words here, numbered 0 to {len(tokens) - 1}")
    from bot.explain.render import printable

    listed = printable(" ".join(f"{index}:{word}" for index, word in enumerate(written)))
    raise PickError(f"--word {typed!r} is not a word of this text; the model reads: {listed}")
