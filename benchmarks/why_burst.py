"""A burst of `/why` from many members of one server: answered, refused, and how long each waited.

Each run starts a FakeDiscord and the real bot (config file, cogs, inference worker, SQLite) on
the published-size model with seeded weights, then ``N`` different members of one server each
ask `/why` of a different long text (``--chars`` characters of corpus text; the model reads its
first 40 tokens, the most a `/why` costs), spread evenly over ``--spread-s`` (1 s), and waits
until every one is answered. It prints, for each burst size, how many got an explanation and how
many a refusal, and the time from asking to the answer (p50, max). Runs with the server's line
(today's bot) and, for comparison, with ``line_per_server = 0``, which refuses whatever cannot
run at once, as the bot did before the line, alternate in ``--repeats`` rounds in one process.

    .venv/bin/python -m benchmarks.why_burst [--sizes 5,10,20] [--repeats 2] [--chars 4000]

The fake and the bot share one process and event loop (inference runs in the worker's thread),
so the times are for comparing runs, not a capacity promise.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.load import load_texts, long_messages, model_files
from tests.conftest import shared_path
from tests.fake_discord import FakeDiscord
from tests.fake_discord.whymoji import running_whymoji, write_config


@dataclass
class Burst:
    label: str
    size: int
    explained: list[float]  # seconds from asking to the explanation
    refused: list[str]  # the refusals' words

    def summary(self) -> str:
        times = sorted(self.explained)
        p50 = statistics.median(times) if times else float("nan")
        longest = times[-1] if times else float("nan")
        refusal = f"; e.g. {self.refused[0]!r}" if self.refused else ""
        return (
            f"{self.label:<28} {self.size:>3} members: explained {len(times):>2}, refused {len(self.refused):>2}; "
            f"answer after p50 {p50:5.2f} s, max {longest:5.2f} s{refusal}"
        )


async def burst(fake: FakeDiscord, members, texts: list[str], spread_s: float) -> tuple[list[float], list[str]]:
    """Every member asks once, spread over ``spread_s``; wait for every answer."""
    asked: list[tuple[float, object, str]] = []
    start = time.monotonic()
    for n, (member, text) in enumerate(zip(members, texts, strict=True)):
        delay = start + n * spread_s / len(members) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        record = await fake.slash(member, fake.general, "why", target=text)
        asked.append((time.monotonic(), record, text))
    answered_at: dict[int, float] = {}

    def all_answered() -> bool:
        now = time.monotonic()
        for _, record, _ in asked:
            if record.id not in answered_at and record.answered:
                answered_at[record.id] = now
        return len(answered_at) == len(asked)

    await fake.wait_for(all_answered, 300, "every answer")
    explained, refused = [], []
    for started, record, _ in asked:
        content = record.original.content if record.original is not None else ""
        if "occlusion" in content:  # an explanation's small print
            explained.append(answered_at[record.id] - started)
        else:
            refused.append(content)
    return explained, refused


async def run(label: str, size: int, line: int, texts: list[str], args, folder: Path, files) -> Burst:
    async with FakeDiscord(lifetime_s=600) as fake:
        members = [fake.add_user(f"member{n}") for n in range(size)]
        config = write_config(
            folder / "why-burst.toml",
            fake,
            weights=files[0],
            vocabulary=files[1],
            database=folder / f"why-burst-{label.split()[0]}-{size}.sqlite3",
            overrides={"model": {"threads": args.threads}},
        )
        async with running_whymoji(fake, config, timeout=120) as bot:
            bot.explanation_limits.line_per_server = line
            warm = await fake.slash(fake.alice, fake.general, "why", target=texts[-1])  # first run builds kernels
            await fake.wait_for(lambda: warm.answered, 120, "the warm-up /why")
            explained, refused = await burst(fake, members, texts[:size], args.spread_s)
    return Burst(label, size, explained, refused)


async def main_async(args: argparse.Namespace) -> None:
    sizes = [int(size) for size in args.sizes.split(",")]
    corpus, source = load_texts(2000, random.Random(args.seed))
    texts = long_messages(corpus, max(sizes) + 1, args.chars)
    print(f"why burst: texts of {args.chars} characters from {source}; model {args.model}; spread {args.spread_s} s")
    results: list[Burst] = []
    with tempfile.TemporaryDirectory(prefix="whymoji-why-burst-") as tmp:
        folder = Path(tmp)
        files = model_files(args.model, folder)
        for _ in range(args.repeats):
            for size in sizes:
                for label, line in (("with the line (today)", None), ("no line (refuse, as before)", 0)):
                    chosen = line if line is not None else _default_line()
                    results.append(await run(label, size, chosen, texts, args, folder, files))
                    print(results[-1].summary(), flush=True)


def _default_line() -> int:
    from bot.rules.explanation_limits import LINE_PER_SERVER

    return LINE_PER_SERVER


def main() -> None:
    has_vocabulary = (shared_path() / "deepmoji" / "vocabulary.json").is_file()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="5,10,20", help="members asking at once, comma-separated")
    parser.add_argument("--spread-s", type=float, default=1.0, help="the burst's span")
    parser.add_argument("--chars", type=int, default=4000, help="length of each /why text")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0, help="model.threads (0: the bot's default)")
    parser.add_argument(
        "--model", choices=("seeded-full", "small"), default="seeded-full" if has_vocabulary else "small"
    )
    parser.add_argument("--seed", type=int, default=1)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
