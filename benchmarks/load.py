"""Load: a burst of messages through the fake Discord to the real bot: batching, and `/why` spam.

Each run starts a FakeDiscord and the real bot (config file, cogs, inference worker, SQLite),
enables reactions in a few channels with ``/whymoji enable``, then posts the whole burst as
fast as the gateway takes it and waits until reactions stop arriving. The same burst runs
three times side by side in one process: with ``worker.max_batch = 1`` (no batching); with
``--max-batch`` (quiet); and with ``--max-batch`` while one user spams `/why` of long messages
(``--why-in-flight`` of them at all times, each about 4,000 characters of corpus text, a new one
as soon as one is answered, from before the burst until its last reaction); ``--runs`` picks
which, ``--repeats`` runs them in rounds. The script prints each run and the ratios batching /
no batching and spam / quiet (of the medians over the rounds):

* messages/s: messages that got reactions, over the time from the first post to the last reaction
* reaction latency p50/p99: from a message's post to its first and to its last reaction
* batch sizes from the worker's ``whymoji_batch_size`` histogram, and shed counts by reason
* for the spam run: `/why`s asked, answered with an explanation (an answer that quotes the
  message), refused (any other answer: too many explanations at once, one at a time, ...), and
  the explanations' time to the answer

    .venv/bin/python -m benchmarks.load [--count 400] [--model seeded-full|small] [--max-batch 32]
        [--why-in-flight 6] [--why-chars 4000] [--runs no-batching,batching,why-spam] [--repeats 1]

Texts come from ``../shared/corpus/messages.jsonl`` (generated sentences if it is absent). The
default model is the published size with seeded weights when the shared vocabulary exists,
else the small test model. Threshold is 0 so every message with known words gets ``top_k``
reactions. The fake and the bot share one process and event loop (inference runs in the
worker's threads), so figures are for comparing runs, not a capacity promise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from bot.deepmoji.architecture import checkpoint_shapes
from bot.deepmoji.seeded import seeded_state_dict
from tests.conftest import SMALL_WORDS, shared_path, small_vocabulary
from tests.fake_discord import FakeDiscord, Message
from tests.fake_discord.whymoji import running_whymoji, write_config

AUTHORS = 8
#: Messages sent (and waited for) before the measured burst, so both runs start warm.
WARM_UP = 20
#: Shortest time between two `/why`s of the spamming user.
WHY_SPACING_S = 0.25


@dataclass
class WhyResult:
    """The `/why`s one user sent during a run and how they were answered."""

    asked: int
    explained: list[float]  # seconds from asking to an explanation
    refused: int
    unanswered: int


@dataclass
class RunResult:
    label: str
    max_batch: int
    posted: int
    posting_s: float
    reacted: int
    seconds: float
    first_latencies: list[float]
    last_latencies: list[float]
    batches: int
    batch_mean: float
    batch_buckets: dict[str, int]
    shed: dict[str, float]
    http_429: int
    why: WhyResult | None = None

    @property
    def rate(self) -> float:
        return self.reacted / self.seconds if self.seconds > 0 else 0.0


def load_texts(count: int, rng: random.Random) -> tuple[list[str], str]:
    corpus = shared_path() / "corpus" / "messages.jsonl"
    if corpus.is_file():
        lines = corpus.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["text"] for line in rng.sample(lines, min(count, len(lines)))], str(corpus)
    words = list(SMALL_WORDS[10:])
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 20))) for _ in range(count)]
    return texts, "generated sentences (no shared corpus)"


def model_files(kind: str, folder: Path) -> tuple[Path, Path]:
    """Write seeded weights of the asked size next to a matching vocabulary."""
    vocabulary = folder / "vocabulary.json"
    if kind == "seeded-full":
        shared_vocabulary = shared_path() / "deepmoji" / "vocabulary.json"
        vocabulary.write_bytes(shared_vocabulary.read_bytes())
        state = seeded_state_dict(seed=1)
    else:
        words = small_vocabulary()
        vocabulary.write_text(json.dumps(words), encoding="utf-8")
        state = seeded_state_dict(seed=7, shapes=checkpoint_shapes(vocab_size=len(words), embed_dim=16, hidden_size=8))
    weights = folder / "pytorch_model.bin"
    torch.save(state, weights)
    return weights, vocabulary


async def settle(
    fake: FakeDiscord, messages: list[Message], quiet_s: float, timeout_s: float, metrics, predicted_before: float
) -> None:
    """Return once the worker has ended a prediction for each message and no reaction has
    arrived for ``quiet_s`` seconds (a `/why` slice may hold predictions back longer than that).

    Bounded by ``timeout_s`` overall (the first model run of a fresh bot may take a while).
    """
    deadline = time.monotonic() + timeout_s

    def total() -> int:
        return sum(len(m.reactions) for m in messages)

    def all_predicted() -> bool:
        return predictions_ended(metrics) - predicted_before >= len(messages)

    await fake.wait_for(lambda: total() and all_predicted(), timeout_s, "a prediction for every message")
    seen = -1
    while seen != total() and time.monotonic() < deadline:
        seen = total()
        try:
            await fake.wait_for(lambda: total() != seen, quiet_s, "more reactions")
        except TimeoutError:
            return


def predictions_ended(metrics) -> float:
    """Predictions the worker has ended, however (``whymoji_worker_requests``)."""
    samples = metrics.worker_requests.collect()[0].samples
    return sum(s.value for s in samples if s.name.endswith("_total") and s.labels["kind"] == "predict")


@dataclass(frozen=True)
class MetricsSnapshot:
    """The worker's batch histogram and the shed counters at one moment."""

    batches: int
    batch_total: float
    cumulative: dict[str, float]  # histogram bucket bound -> requests-per-run count at or below
    shed: dict[str, float]

    @classmethod
    def take(cls, metrics) -> MetricsSnapshot:
        samples = metrics.batch_size.collect()[0].samples
        shed = metrics.reactions_shed.collect()[0].samples
        return cls(
            batches=int(next(s.value for s in samples if s.name.endswith("_count"))),
            batch_total=next(s.value for s in samples if s.name.endswith("_sum")),
            cumulative={s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")},
            shed={s.labels["reason"]: s.value for s in shed if s.name.endswith("_total")},
        )

    def since(self, earlier: MetricsSnapshot) -> tuple[int, float, dict[str, int], dict[str, float]]:
        """(model runs, mean batch, runs per batch-size bucket, shed by reason) between the two."""
        runs = self.batches - earlier.batches
        mean = (self.batch_total - earlier.batch_total) / runs if runs else 0.0
        buckets, below = {}, 0.0
        for bound, value in self.cumulative.items():
            count = value - earlier.cumulative.get(bound, 0.0)
            if count > below:
                buckets[f"<={bound}"] = int(count - below)
            below = count
        shed = {reason: value - earlier.shed.get(reason, 0.0) for reason, value in self.shed.items()}
        return runs, mean, buckets, {reason: value for reason, value in shed.items() if value}


def long_messages(texts: list[str], count: int, length: int) -> list[str]:
    """``count`` messages of ``length`` characters, made of consecutive corpus texts."""
    messages, source = [], iter(texts * (1 + count * length // max(1, sum(map(len, texts)))))
    for _ in range(count):
        parts: list[str] = []
        while sum(len(part) + 1 for part in parts) < length:
            parts.append(next(source))
        messages.append(" ".join(parts)[:length])
    return messages


async def spam_why(
    fake: FakeDiscord, user, channel, texts: list[str], in_flight: int, stop: asyncio.Event
) -> WhyResult:
    """Keep ``in_flight`` `/why`s of ``texts`` outstanding until ``stop``, asking at most one per
    ``WHY_SPACING_S`` (a fast clicker, not a flood of refusals); time each answer."""
    asked: list[tuple[float, str, object]] = []
    answered_at: dict[int, float] = {}
    while not stop.is_set():
        now = time.monotonic()
        for _, _, record in asked:
            if record.id not in answered_at and record.answered:
                answered_at[record.id] = now
        spaced = not asked or now - asked[-1][0] >= WHY_SPACING_S
        if spaced and len(asked) - len(answered_at) < in_flight:
            text = texts[len(asked) % len(texts)]
            record = await fake.slash(user, channel, "why", target=text)
            asked.append((time.monotonic(), text, record))
        try:
            await asyncio.wait_for(stop.wait(), 0.02)
        except TimeoutError:
            pass
    explained, refused = [], 0
    for started, text, record in asked:
        if record.id not in answered_at:
            continue
        # An explanation shows the message; a refusal ("one at a time", "try again") does not.
        quote = max((word for word in text.split()[:30] if word.isalpha()), key=len, default=text[:1])
        if any(quote in (body.get("content") or "") for body in record.bodies()):
            explained.append(answered_at[record.id] - started)
        else:
            refused += 1
    return WhyResult(len(asked), explained, refused, len(asked) - len(answered_at))


async def run_once(
    label: str,
    max_batch: int,
    texts: list[str],
    args: argparse.Namespace,
    folder: Path,
    files: tuple[Path, Path],
    why_texts: list[str] | None = None,
) -> RunResult:
    async with FakeDiscord(reaction_limit=(args.reaction_limit, 1.0), lifetime_s=args.timeout_s + 300) as fake:
        channels = [fake.general] + [fake.add_channel(f"load-{n}") for n in range(1, args.channels)]
        authors = [fake.alice] + [fake.add_user(f"user{n}") for n in range(1, AUTHORS)]
        config = write_config(
            folder / f"run-{label.replace('/', '')}.toml",
            fake,
            weights=files[0],
            vocabulary=files[1],
            database=folder / f"run-{label.replace('/', '')}.sqlite3",
            overrides={
                "worker": {"max_batch": max_batch, "max_wait_ms": args.max_wait_ms, "queue_size": args.queue_size},
                "reactions": {"threshold": 0.0, "top_k": args.top_k},
                "model": {"threads": args.threads},
            },
        )
        async with running_whymoji(fake, config, timeout=120) as bot:
            for channel in channels:
                record = await fake.slash(fake.moderator, channel, "whymoji enable")
                await fake.wait_for(lambda: record.answered, 30, "/whymoji enable")
            warm_up = [await fake.send_message(channels[0], authors[0], text) for text in texts[:WARM_UP]]
            await settle(fake, warm_up, args.quiet_s, args.timeout_s, bot.metrics, 0.0)
            before = MetricsSnapshot.take(bot.metrics)
            predicted_before = predictions_ended(bot.metrics)
            calls_before = len(fake.rest_log)
            stop_spam = asyncio.Event()
            spam = None
            if why_texts:
                spammer = fake.add_user("spammer")
                spam = asyncio.create_task(
                    spam_why(fake, spammer, channels[0], why_texts, args.why_in_flight, stop_spam)
                )
                await fake.wait_for(lambda: bot.worker.status().busy_for_s is not None, 30, "the first /why")
            start = time.monotonic()
            messages = [
                await fake.send_message(channels[n % len(channels)], authors[n % len(authors)], text)
                for n, text in enumerate(texts)
            ]
            posting_s = time.monotonic() - start
            await settle(fake, messages, args.quiet_s, args.timeout_s, bot.metrics, predicted_before)
            stop_spam.set()
            why = await spam if spam is not None else None
            batches, batch_mean, buckets, shed = MetricsSnapshot.take(bot.metrics).since(before)
        reacted = [m for m in messages if m.reaction_times]
        end = max((m.reaction_times[-1] for m in reacted), default=start)
        return RunResult(
            label=label,
            max_batch=max_batch,
            posted=len(messages),
            posting_s=posting_s,
            reacted=len(reacted),
            seconds=end - start,
            first_latencies=[m.reaction_times[0] - m.created_at for m in reacted],
            last_latencies=[m.reaction_times[-1] - m.created_at for m in reacted],
            batches=batches,
            batch_mean=batch_mean,
            batch_buckets=buckets,
            shed=shed,
            http_429=sum(1 for call in fake.rest_log[calls_before:] if call.status == 429),
            why=why,
        )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(result: RunResult) -> None:
    ms = 1000.0
    print(f"\n== {result.label} (worker.max_batch={result.max_batch})")
    print(
        f"messages posted {result.posted} (in {result.posting_s:.2f} s), "
        f"with reactions {result.reacted}, last reaction after {result.seconds:.2f} s"
    )
    print(f"messages/s                {result.rate:8.1f}")
    for name, values in (("first reaction", result.first_latencies), ("all reactions", result.last_latencies)):
        print(
            f"latency to {name:15s} p50 {percentile(values, 50) * ms:7.1f} ms  p99 {percentile(values, 99) * ms:7.1f} ms"
        )
    print(f"model runs {result.batches}, mean batch {result.batch_mean:.1f}, sizes {result.batch_buckets}")
    print(f"shed {result.shed or 'none'}; HTTP 429 seen {result.http_429}")
    if result.why is not None:
        why = result.why
        print(
            f"/why asked {why.asked}: explained {len(why.explained)} (median "
            f"{percentile(why.explained, 50):.1f} s, longest {max(why.explained, default=float('nan')):.1f} s), "
            f"refused {why.refused}, unanswered at the end {why.unanswered}"
        )


def parse_args() -> argparse.Namespace:
    has_vocabulary = (shared_path() / "deepmoji" / "vocabulary.json").is_file()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=400, help="messages in the burst")
    parser.add_argument(
        "--model",
        choices=("seeded-full", "small"),
        default="seeded-full" if has_vocabulary else "small",
        help="published-size seeded weights (needs the shared vocabulary) or the small test model",
    )
    parser.add_argument("--max-batch", type=int, default=32, help="worker.max_batch of the batching run")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--queue-size", type=int, default=256)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's choice)")
    parser.add_argument("--channels", type=int, default=8, help="channels the burst is spread over")
    parser.add_argument("--reaction-limit", type=int, default=10_000, help="reactions per channel per second")
    parser.add_argument("--quiet-s", type=float, default=3.0, help="no new reaction this long = done")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--why-in-flight", type=int, default=6, help="`/why`s the spamming user keeps outstanding")
    parser.add_argument("--why-chars", type=int, default=4000, help="length of the spammed `/why` texts")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the runs; ratios of the medians")
    parser.add_argument(
        "--runs", default="no-batching,batching,why-spam", help="which runs, in order (comma-separated)"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    unknown = set(args.runs.split(",")) - {"no-batching", "batching", "why-spam"}
    if unknown:
        parser.error(f"--runs: unknown run(s) {', '.join(sorted(unknown))}")
    if args.model == "seeded-full" and not has_vocabulary:
        parser.error(f"--model seeded-full needs {shared_path() / 'deepmoji' / 'vocabulary.json'}")
    return args


async def main_async(args: argparse.Namespace) -> None:
    texts, source = load_texts(args.count, random.Random(args.seed))
    print(f"load: {len(texts)} messages from {source}; model {args.model}; top_k {args.top_k}, threshold 0")
    with tempfile.TemporaryDirectory(prefix="whymoji-load-") as tmp:
        folder = Path(tmp)
        files = model_files(args.model, folder)
        results: dict[str, list[RunResult]] = {run: [] for run in args.runs.split(",")}
        for _ in range(args.repeats):  # rounds of every run, so the machine's mood hits all alike
            for run, done in results.items():
                if run == "no-batching":
                    done.append(await run_once("no batching", 1, texts, args, folder, files))
                elif run == "batching":
                    done.append(await run_once("batching", args.max_batch, texts, args, folder, files))
                else:
                    why_texts = long_messages(texts, 8, args.why_chars)
                    label = f"batching, one user spams /why of {args.why_chars} characters"
                    done.append(await run_once(label, args.max_batch, texts, args, folder, files, why_texts))
    for done in results.values():
        for result in done:
            report(result)
    if "batching" in results and "no-batching" in results:
        compare("batching / no batching", results["batching"], results["no-batching"])
    if "batching" in results and "why-spam" in results:
        compare("one user spams /why / quiet (both batching)", results["why-spam"], results["batching"])


def compare(title: str, results: list[RunResult], references: list[RunResult]) -> None:
    """Ratios of the medians over the rounds (one round: the figures themselves)."""
    rounds = f", medians of {len(results)} rounds" if len(results) > 1 else ""
    print(f"\n== {title}{rounds}")
    rate = ratio(statistics.median(r.rate for r in results), statistics.median(r.rate for r in references))
    print(f"messages/s                    x{rate:.2f}")
    for q in (50, 99):
        for name, latencies in (
            ("first reaction", lambda result: result.first_latencies),
            ("all reactions", lambda result: result.last_latencies),
        ):
            now = statistics.median(percentile(latencies(result), q) for result in results)
            before = statistics.median(percentile(latencies(result), q) for result in references)
            print(f"p{q} latency to {name:15s} x{ratio(now, before):.2f}  ({before * 1000:.0f} -> {now * 1000:.0f} ms)")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main_async(parse_args()))


if __name__ == "__main__":
    main()
