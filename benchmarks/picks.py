"""Picks in the menus under `/why` answers: the time to an answer, kept and after a restart, and
the memory that kept explanations take.

Through the fake Discord to the real bot (config file, cogs, worker, SQLite), one process:
``--messages`` corpus messages are posted and explained privately with the message command,
then each answer gets an emoji pick and a word pick (the explanation is kept: no model run),
then the bot is restarted (a new bot on the same database: nothing kept) and each answer gets a
pick again, which reads the message and explains it again, then one more (kept again). For each
pick it measures, on the event loop's clock, the time from sending the interaction to the first
acknowledgement and to the answer being visible (the updated message).

Then the memory: ``--kept`` explanations (the corpus messages explained once, cycled, each with a
text of its own; then the largest explanation a ``/why`` keeps, ``WORST_TEXT``) kept in
``KeptExplanations`` with room for all, measured with tracemalloc (what is allocated and still
held), beside the same explanations held as plain objects.

    .venv/bin/python -m benchmarks.picks [--messages 20] [--kept 1000] [--model seeded-full|small]
        [--parts picks,memory]

The default model is the published size with seeded weights when the shared vocabulary exists
(``benchmarks/load.py``'s files), else the small test model.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

from benchmarks.load import load_texts, model_files
from bot.deepmoji.engine import Engine
from bot.deepmoji.files import ModelFiles
from bot.explain import explain
from bot.explain.packed import PackedExplanation
from bot.interactions.picks import Subject
from bot.rules.kept import KeptExplanations
from bot.rules.markup import normalize_markup
from cogs.why import CONTEXT_MENU_NAME
from tests.conftest import shared_path
from tests.fake_discord import FakeDiscord
from tests.fake_discord.whymoji import running_whymoji, write_config

VISIBLE = {("callback", 4), ("callback", 7), ("followup", None), ("edit_original", None)}


def visible(record) -> bool:
    return any((kind, body.get("type") if kind == "callback" else None) in VISIBLE for kind, body in record.responses)


async def timed_pick(fake: FakeDiscord, user, message, custom_id: str, value: str) -> tuple[float, float, int]:
    """Seconds to the first acknowledgement and to the visible answer, and the callback type."""
    started = time.perf_counter()
    record = await fake.pick(user, message, custom_id, value)
    await fake.wait_for(lambda: record.acknowledged, 60, "the acknowledgement")
    acknowledged = time.perf_counter() - started
    await fake.wait_for(lambda: visible(record), 60, "the answer")
    return acknowledged, time.perf_counter() - started, record.callback_type


def summary(label: str, timings: list[tuple[float, float, int]]) -> None:
    acks = sorted(t[0] * 1000 for t in timings)
    answers = sorted(t[1] * 1000 for t in timings)
    kinds = sorted({t[2] for t in timings})
    p90 = answers[min(len(answers) - 1, int(0.9 * len(answers)))]
    print(
        f"{label:34s} {len(timings):4d} picks  first answer (callback {kinds}) median {statistics.median(acks):7.1f} ms"
        f" max {acks[-1]:7.1f} ms;  shown median {statistics.median(answers):7.1f} ms  p90 {p90:7.1f} ms"
        f"  max {answers[-1]:7.1f} ms"
    )


async def pick_times(args: argparse.Namespace, texts: list[str], folder: Path, files: tuple[Path, Path]) -> None:
    async with FakeDiscord(lifetime_s=3600) as fake:
        config = write_config(
            folder / "whymoji.toml",
            fake,
            weights=files[0],
            vocabulary=files[1],
            database=folder / "settings.sqlite3",
            overrides={"model": {"threads": args.threads}},
        )
        answers = []
        async with running_whymoji(fake, config, timeout=120):
            for text in texts:
                message = await fake.send_message(fake.general, fake.moderator, text)
                record = await fake.message_command(fake.alice, message, CONTEXT_MENU_NAME)
                await fake.wait_for(lambda: record.answered, 120, "an explanation")
                if fake.selects(record.original):
                    answers.append(record.original)
            kept = []
            for answer in answers:
                emoji_menu, word_menu = fake.selects(answer)
                emoji_value = fake.selects(answer)[emoji_menu]["options"][2]["value"]
                word_value = fake.selects(answer)[word_menu]["options"][0]["value"]
                kept.append(await timed_pick(fake, fake.alice, answer, emoji_menu, emoji_value))
                kept.append(await timed_pick(fake, fake.alice, answer, word_menu, word_value))
        recomputed, kept_again = [], []
        async with running_whymoji(fake, config, timeout=120):
            for answer in answers:
                emoji_menu, word_menu = fake.selects(answer)
                word_value = fake.selects(answer)[word_menu]["options"][-1]["value"]
                recomputed.append(await timed_pick(fake, fake.alice, answer, word_menu, word_value))
                kept_again.append(await timed_pick(fake, fake.alice, answer, emoji_menu, "all"))
        assert fake.invalid_bodies == [] and fake.unknown_routes == []
    print(f"\n{len(answers)} private answers (message command), one pick at a time:")
    summary("kept (no model run)", kept)
    summary("after a restart (explained again)", recomputed)
    summary("kept again after the restart", kept_again)


def held(make, count: int) -> float:
    """MB allocated and still held after ``make(i)`` for i < count (tracemalloc; RSS moves by the
    allocator's whims and tracemalloc's own records at these sizes)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make(index) for index in range(count)]
    gc.collect()
    traced = (tracemalloc.get_traced_memory()[0] - before) / 1e6
    tracemalloc.stop()
    del kept
    return traced


#: The largest explanation a ``/why`` keeps at the default ``model.max_tokens``: 40 tokens read
#: of a 4,000-character text (Discord's limit) with an emoji in it, so 4 bytes per character.
WORST_TEXT = ("i love you so much , what a day " * 5 + "😂" * 4000)[:4000]


def memory(args: argparse.Namespace, texts: list[str], files: tuple[Path, Path]) -> None:
    engine = Engine.load(ModelFiles(*files))
    explained = [explain(engine, normalize_markup(text)) for text in texts]
    measure(args.kept, [e for e in explained if e.words], "corpus messages")
    measure(args.kept, [explain(engine, WORST_TEXT)], "the largest a /why keeps")


def measure(count: int, explained: list, label: str) -> None:
    tokens = [len(e.words) for e in explained]
    chars = [len(e.text) for e in explained]

    def fresh(index: int):  # a text of its own, as every kept explanation has
        explanation = explained[index % len(explained)]
        return replace(explanation, text="".join(list(explanation.text)))

    cache = KeptExplanations(10**12)

    def keep(index: int) -> None:  # as the bot keeps one: the only holder of its text
        cache.keep(Subject.message(1, 2, index), fresh(index))

    def plain(index: int):  # objects of its own too (unpack builds every word anew)
        return PackedExplanation.pack(fresh(index)).unpack()

    traced = held(keep, count)
    plain_traced = held(plain, count)
    print(
        f"\n{count} kept explanations, {label} ({len(explained)} cycled: {statistics.mean(tokens):.1f} tokens read"
        f" and {statistics.mean(chars):.0f} characters on average, longest {max(tokens)} tokens):"
    )
    print(
        f"  kept (packed):         {traced:6.2f} MB allocated and held (tracemalloc);"
        f" KeptExplanations.bytes says {cache.bytes / 1e6:.2f} MB ({cache.bytes / count / 1e3:.1f} KB each)"
    )
    print(f"  as plain Explanations: {plain_traced:6.2f} MB allocated and held")


def parse_args() -> argparse.Namespace:
    has_vocabulary = (shared_path() / "deepmoji" / "vocabulary.json").is_file()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20, help="answers picked in")
    parser.add_argument("--kept", type=int, default=1000, help="explanations kept for the memory figure")
    parser.add_argument(
        "--model", choices=("seeded-full", "small"), default="seeded-full" if has_vocabulary else "small"
    )
    parser.add_argument("--threads", type=int, default=1, help="model.threads of the bot")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--parts", default="picks,memory", help="what to measure (comma-separated)")
    return parser.parse_args()


async def main_async(args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    texts, source = load_texts(args.messages, random.Random(args.seed))
    print(f"picks: {len(texts)} messages from {source}; model {args.model}; load average {load:.2f} at the start")
    with tempfile.TemporaryDirectory(prefix="whymoji-picks-") as tmp:
        folder = Path(tmp)
        files = model_files(args.model, folder)
        if "picks" in args.parts:
            await pick_times(args, texts, folder, files)
        if "memory" in args.parts:
            memory(args, texts, files)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main_async(parse_args()))


if __name__ == "__main__":
    main()
