"""The readability gate on the corpus, and what reading a message costs next to the model.

1. How many messages of each source in ``../shared/corpus/messages.jsonl`` the gate stops
   (``Engine.read(text).known_share < reactions.min_known``) with the real 50k vocabulary. The
   figure depends only on the vocabulary, so it holds for the published model. Some corpus
   texts were anonymised with placeholders (``CUSTOM_AT``, ``CUSTOM_URL``, ``CUSTOM_NUMBER``,
   ``custom_break``); they are turned back into what the bot would see (``@user``, a URL, a
   number, a line break), which the gate counts as neither known nor unknown words.
2. What the gate's reading costs (``Engine.read``: tokenizing the whole message, done once per
   message in a thread by ``bot/predictions.py``) against one model run on the same message
   (full-size seeded weights, one torch thread; the worker tokenizes again when it predicts),
   for a typical corpus message and 4,000-character worst cases, and what handing the reading
   to a thread adds. Calls alternate between the measures; every figure is a median.

Usage:

    .venv/bin/python -m benchmarks.readability_gate [--min-known 0.25,0.5,0.75] [--repeats 9]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import torch

from bot.config import ReactionsConfig
from bot.deepmoji.engine import Engine
from bot.deepmoji.model import DeepMoji
from bot.deepmoji.seeded import seeded_state_dict
from bot.deepmoji.tokenizer import Tokenizer

SHARED = Path(os.environ.get("WHYMOJI_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
#: The corpus's anonymising placeholders (any case) -> what a Discord message would carry instead.
PLACEHOLDERS = {"at": "@user", "url": "https://example.com", "number": "7", "break": "\n"}
PLACEHOLDER = re.compile(r"custom_(at|url|number|break)", re.IGNORECASE)
LONG = 4000  # Discord's longest message (with Nitro), in characters


def as_the_bot_sees_it(text: str) -> str:
    return PLACEHOLDER.sub(lambda match: PLACEHOLDERS[match.group(1).lower()], text)


def corpus(shared: Path) -> list[tuple[str, str]]:
    """(source, text) of every corpus message, placeholders restored."""
    path = shared / "corpus" / "messages.jsonl"
    if not path.is_file():
        raise SystemExit(f"readability_gate: needs the shared corpus at {path} (set WHYMOJI_SHARED)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(row["source"], as_the_bot_sees_it(row["text"])) for row in rows]


def gate_table(engine: Engine, messages: list[tuple[str, str]], levels: Sequence[float]) -> None:
    shares = [(source, engine.read(text).known_share) for source, text in messages]
    totals = Counter(source for source, _ in shares)
    print(f"\nmessages the gate stops (known share below min_known; default {ReactionsConfig.min_known:g}):")
    header = f"{'source':16}{'messages':>10}" + "".join(f"{f'stopped at {level:g}':>22}" for level in levels)
    print(header)
    for source in [*sorted(totals), "all"]:
        chosen = [share for name, share in shares if source in (name, "all")]
        cells = []
        for level in levels:
            stopped = sum(share < level for share in chosen)
            cells.append(f"{stopped:>12} ({100 * stopped / len(chosen):5.1f}%)")
        print(f"{source:16}{len(chosen):>10}" + "".join(f"{cell:>22}" for cell in cells))


async def milliseconds(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return 1000 * (time.perf_counter() - started)


async def cost_table(engine: Engine, messages: list[tuple[str, str]], repeats: int) -> None:
    """Timed inside one running event loop, as the bot runs: ``read`` on the loop itself,
    ``in a thread`` through ``asyncio.to_thread`` (what ``MessagePredictions.read`` does)."""
    texts = sorted((text for _, text in messages), key=len)
    samples = {
        "typical corpus message": texts[len(texts) // 2],
        f"{LONG} x '!?' characters": ("!?" * LONG)[:LONG],
        f"{LONG} characters of English": ("i love you so much but this is the worst day ever " * 100)[:LONG],
        f"{LONG} characters of Chinese": ("我今天很开心因为天气很好" * 400)[:LONG],
    }

    async def inline(text: str) -> object:
        return engine.read(text)

    async def model(text: str) -> object:
        return engine.predict([text])

    measures: dict[str, Callable[[str], Awaitable[object]]] = {
        "read": inline,
        "in a thread": lambda text: asyncio.to_thread(engine.read, text),
        "model": model,
    }
    figures: dict[tuple[str, str], list[float]] = {}
    for round_number in range(repeats):
        for name, text in samples.items():
            shift = round_number % len(measures)
            for measure in list(measures)[shift:] + list(measures)[:shift]:
                figures.setdefault((name, measure), []).append(await milliseconds(lambda: measures[measure](text)))
    print(
        f"\nreading vs the model, medians of {repeats} alternating calls (ms; one torch thread, "
        f"model.max_tokens {engine.max_tokens}):"
    )
    print(f"{'message':34}{'tokens':>8}{'read':>10}{'in a thread':>13}{'model':>10}{'read / model':>14}")
    for name, text in samples.items():
        reading = engine.read(text)
        read, threaded, run = (statistics.median(figures[(name, measure)]) for measure in measures)
        print(
            f"{name:34}{reading.total:>8}{read:>10.3f}{threaded:>13.3f}{run:>10.1f}{read / run:>14.3f}"
            f"   (known share {reading.known_share:.2f})"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-known", default=str(ReactionsConfig.min_known), help="levels, e.g. 0.25,0.5,0.75")
    parser.add_argument("--repeats", type=int, default=9, help="alternating calls per cost figure")
    args = parser.parse_args(argv)
    levels = [float(level) for level in args.min_known.split(",")]

    torch.set_num_threads(1)
    tokenizer = Tokenizer.from_file(SHARED / "deepmoji" / "vocabulary.json")
    model = DeepMoji()
    model.load_state_dict(seeded_state_dict(1))
    model.eval()
    engine = Engine(tokenizer, model)
    messages = corpus(SHARED)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start")
    gate_table(engine, messages, levels)
    asyncio.run(cost_table(engine, messages, args.repeats))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
