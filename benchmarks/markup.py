"""Emphasis markup on the worst 4,000-character messages: ``bot.rules.markup``'s pairing against the
regexes it replaced, side by side (the cogs normalise every message on the event loop).

    .venv/bin/python -m benchmarks.markup [--rounds 5]

Each figure is the fastest of ``--rounds`` interleaved rounds of stripping all five emphasis
markers (``**``, ``__``, ``~~``, ``*``, ``_``) until nothing changes, as ``normalize_markup`` does.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable

from bot.rules import markup

#: The regexes emphasis was stripped with before (the tests' reference for the pairing).
REGEXES = (
    re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.DOTALL),
    re.compile(r"__(?=\S)(.+?)(?<=\S)__", re.DOTALL),
    re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.DOTALL),
    re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", re.DOTALL),
    re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])", re.DOTALL),
)
TEXTS = {
    "`*a-` x 1,333 (no closing `*`)": "*a-" * 1333,
    "`**a ` x 1,000": "**a " * 1000,
    "`__a ` x 1,000": "__a " * 1000,
    "`~~a ` x 1,000": "~~a " * 1000,
    "`*a ` x 1,333": "*a " * 1333,
    "English with **bold** and _italics_": "what a **great** day, _really_ " * 130,
}


def to_fixpoint(strip: Callable[[str, int], str], text: str, count: int) -> str:
    for index in range(count):
        previous = None
        while previous != text:
            previous, text = text, strip(text, index)
    return text


def regexes(text: str, index: int) -> str:
    return REGEXES[index].sub(r"\1", text)


def pairing(text: str, index: int) -> str:
    return markup._unwrap(text, markup._EMPHASIS[index])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'message':40}{'regexes ms':>12}{'pairing ms':>12}{'speed-up':>10}")
    for name, text in TEXTS.items():
        best, results = {}, {}
        for _ in range(args.rounds):
            for label, strip in (("regexes", regexes), ("pairing", pairing)):
                start = time.perf_counter()
                results[label] = to_fixpoint(strip, text, len(REGEXES))
                best[label] = min(best.get(label, float("inf")), (time.perf_counter() - start) * 1000)
        if results["regexes"] != results["pairing"]:
            raise SystemExit(f"the two disagree on {name}")
        print(f"{name:40}{best['regexes']:12.2f}{best['pairing']:12.2f}{best['regexes'] / best['pairing']:9.2f}x")


if __name__ == "__main__":
    main()
