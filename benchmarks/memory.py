"""Resident memory of one bot process with the full-size model, without Discord.

A fresh child process builds the bot exactly as `whymoji run` does (``WhymojiBot.setup_hook``:
engine, worker, store, health server, cogs) from a full-size seeded checkpoint (published
shapes, 50k vocabulary), answers a stream of predictions and a few `/why` explanations, then
the worst inputs Discord can send (``WORST_INPUTS``: 4,000 characters of punctuation, one
4,000-character word, 2,000 one-letter words, 4,000 emoji, a letter under 3,999 accents,
markup the normaliser finds slowest), each through ``normalize_markup`` as the cogs do: ``--burst``
of each at once as reactions, then each once as `/why`, ``worker.max_explanations`` at once.
Last, ``--message-burst`` (2,000) worst inputs arrive as Discord messages within
``--message-burst-s`` (1 s), spread over ``--channels`` (100) reaction-enabled channels (so the
per-channel cooldown does not keep them from the model): each is a gateway payload (JSON text,
decoded) handed to discord.py's own ``parse_message_create``, so discord.py builds the message,
caches it and dispatches it to the cogs' listeners, which read it, predict and react (reactions go
nowhere); the stage ends when every listener has. It prints what the reactions cog placed and
shed. It reports VmRSS (now) and VmHWM (peak) from /proc/self/status after each stage. Each
variant runs in its own child, side by side in one run, so the figures compare.

    .venv/bin/python benchmarks/memory.py [--messages 2000] [--burst 64] [--message-burst 2000]
        [--message-burst-s 1] [--channels 100] [--variants "default;MALLOC_ARENA_MAX=2"]

A variant is ``default`` or space-separated environment assignments for the child, such as
``WHYMOJI_MODEL_THREADS=1``, ``WHYMOJI_MODEL_PRECISION=int8``, ``MALLOC_ARENA_MAX=2``, or
``WHYMOJI_BENCH_BACKEND=torch`` (this script only: predictions on the torch path instead of
ONNX Runtime, as the bot ran before ONNX Runtime; the session built at load stays in memory) or
``WHYMOJI_BENCH_MAX_IN_FLIGHT=100000`` (the message burst without the bound on messages in flight).
A variant may be repeated, as ``default;RUN=2``: the allocator makes runs differ by tens of MB.
Memory is measured after 400 and after all predictions, to show whether it keeps growing.

The target is under 600 MB resident on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WHYMOJI_SHARED", REPO.parent / "shared"))
TARGET_MB = 600


def status_mb() -> dict[str, float]:
    """VmRSS and VmHWM of this process, in MB (10^6 bytes)."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024 / 1e6
    return values


def texts(count: int) -> list[str]:
    """Short messages: the shared corpus when present, else varied synthetic ones."""
    corpus = SHARED / "corpus" / "messages.jsonl"
    if corpus.is_file():
        lines = corpus.read_text(encoding="utf-8").splitlines()[:count]
        found = [json.loads(line).get("text", "") for line in lines]
        found = [text for text in found if text.strip()]
        if found:
            return found
    words = "i love this so much what a day lol not happy at all why would you do that".split()
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(3 + i % 12)) for i in range(count)]


def worst_inputs(rng: random.Random) -> dict[str, Callable[[], str]]:
    """Makers of 4,000-character messages, the longest Discord allows; each call a new one, so
    no cache can help (a run of one symbol would be cut to two characters, so none is used)."""
    letters = string.ascii_lowercase
    return {
        "punctuation !?!? (4,000 tokens)": lambda: "!?" * 2000,
        "one 4,000-character word": lambda: "".join(rng.choice(letters) for _ in range(4000)),
        "2,000 one-letter words": lambda: " ".join(rng.choice(letters) for _ in range(2000)),
        "4,000 emoji": lambda: "".join(rng.choice("😂😭❤😍🙏🔥") for _ in range(4000)),
        "a letter under 3,999 accents": lambda: "a" + "".join(chr(0x300 + rng.randrange(0x70)) for _ in range(3999)),
        "markup *a- x 1,333": lambda: "*a-" * 1333 + "*",
    }


def write_model(folder: Path) -> None:
    """Full-size seeded checkpoint and a 50k vocabulary (the published one when shared is here)."""
    import torch

    from bot.deepmoji.seeded import seeded_state_dict

    torch.save(seeded_state_dict(seed=1), folder / "pytorch_model.bin")
    vocabulary = SHARED / "deepmoji" / "vocabulary.json"
    if vocabulary.is_file():
        (folder / "vocabulary.json").write_text(vocabulary.read_text(encoding="utf-8"), encoding="utf-8")
    else:
        specials = "MASK UNKNOWN AT URL NUMBER BREAK BLANK_6 BLANK_7 BLANK_8 BLANK_9".split()
        words = [f"CUSTOM_{name}" for name in specials] + [f"w{i}" for i in range(50_000 - len(specials))]
        (folder / "vocabulary.json").write_text(json.dumps({w: i for i, w in enumerate(words)}))


async def message_burst(bot, count: int, seconds: float, channels: int) -> dict[str, float]:
    """``count`` worst inputs as gateway MESSAGE_CREATE payloads within ``seconds``, through
    discord.py and the cogs; returns what the reactions cog placed and shed, by reason."""
    import asyncio

    from tests.fake_discord.world import World

    world = World()
    owner = world.add_user("owner")
    bot_user = world.add_user("whymoji", bot=True)
    guild = world.add_guild("burst", owner)
    world.add_member(guild, bot_user)
    authors = [world.add_user(f"member{n}") for n in range(50)]
    for author in authors:
        world.add_member(guild, author)
    rooms = [world.add_channel(guild, f"room{n}") for n in range(channels)]
    import discord

    state = bot._connection
    state.user = discord.ClientUser(state=state, data=bot_user.payload())  # as logging in sets it
    state._add_guild_from_data(guild.create_payload())
    for room in rooms:
        await bot.store.set_channel_enabled(guild.id, room.id, True)

    async def no_reaction(*args, **kwargs) -> None:
        return None

    bot.http.add_reaction = no_reaction  # the bot is not logged in: reactions go nowhere
    if "WHYMOJI_BENCH_MAX_IN_FLIGHT" in os.environ:  # e.g. 100000: no bound, as before it
        bot.predictions.max_in_flight = int(os.environ["WHYMOJI_BENCH_MAX_IN_FLIGHT"])
    makers = list(worst_inputs(random.Random(2)).values())
    waves = max(1, int(seconds / 0.025))
    per_wave = -(-count // waves)
    started = time.perf_counter()
    sent = 0
    for wave in range(waves):
        for _ in range(min(per_wave, count - sent)):
            message = world.add_message(rooms[sent % channels].id, authors[sent % len(authors)], makers[sent % 6]())
            state.parse_message_create(json.loads(json.dumps(message.payload(world))))
            world.messages.pop(message.id)
            sent += 1
        await asyncio.sleep(max(0.0, started + (wave + 1) * seconds / waves - time.perf_counter()))
    arrived_s = time.perf_counter() - started
    listeners = [task for task in asyncio.all_tasks() if task.get_name() == "discord.py: on_message"]
    if listeners:
        await asyncio.wait(listeners)
    samples = bot.metrics.reactions_shed.collect()[0].samples
    shed = {s.labels["reason"]: s.value for s in samples if s.name.endswith("_total") and s.value}
    placed = bot.metrics.registry.get_sample_value("whymoji_reactions_placed_total") or 0.0
    return {"arrived_s": arrived_s, "handled_s": time.perf_counter() - started, "placed": placed, **shed}


async def measure(folder: Path, messages: int, burst: int, message_count: int, burst_s: float, channels: int) -> dict:
    """Memory at each stage of one bot process, and its prediction rate; runs in the child."""
    import asyncio

    stages = [("python started", status_mb())]
    import torch  # noqa: F401  (measured in the imports stage even where the bot imports it lazily)

    from bot.app import WhymojiBot
    from bot.config import load_config
    from bot.rules.markup import normalize_markup

    stages.append(("imports (torch, discord.py, bot)", status_mb()))
    environ = {
        "WHYMOJI_MODEL_WEIGHTS": str(folder / "pytorch_model.bin"),
        "WHYMOJI_MODEL_VOCABULARY": str(folder / "vocabulary.json"),
        "WHYMOJI_DATABASE_URL": f"sqlite:///{folder / 'settings.sqlite3'}",
        "WHYMOJI_HEALTH_PORT": "0",
        "WHYMOJI_DISCORD_SYNC_COMMANDS": "false",
        **{k: v for k, v in os.environ.items() if k.startswith("WHYMOJI_MODEL_")},
    }
    bot = WhymojiBot(load_config(None, environ))
    async with bot:
        await bot.setup_hook()
        if "WHYMOJI_BENCH_BACKEND" in os.environ:  # e.g. torch: predictions as before ONNX Runtime
            bot.engine.model.backend = os.environ["WHYMOJI_BENCH_BACKEND"]
        stages.append(("bot set up: model, worker, store, health, cogs", status_mb()))
        batch = texts(messages)
        wave = bot.config.worker.queue_size // 2  # concurrent, but never enough to be shed
        checkpoints = {min(400, len(batch)), len(batch)}
        started = time.perf_counter()
        for start in range(0, len(batch), wave):
            await asyncio.gather(*(bot.worker.predict(text) for text in batch[start : start + wave]))
            done = min(start + wave, len(batch))
            if done in checkpoints or (start < min(checkpoints) < done):
                stages.append((f"after {done} predictions", status_mb()))
        rate = len(batch) / (time.perf_counter() - started)
        for text in batch[:5]:
            await bot.worker.explain(text)
        stages.append(("after 5 /why explanations", status_mb()))
        makers = list(worst_inputs(random.Random(1)).values())
        seconds = {}
        started = time.perf_counter()
        for make in makers:
            await asyncio.gather(*(bot.worker.predict(normalize_markup(make())) for _ in range(burst)))
        seconds["reactions"] = time.perf_counter() - started
        stages.append((f"worst inputs as reactions ({burst} of each at once)", status_mb()))
        at_once = bot.config.worker.max_explanations
        started = time.perf_counter()
        for first in range(0, len(makers), at_once):
            wave = makers[first : first + at_once]
            await asyncio.gather(*(bot.worker.explain(normalize_markup(make())) for make in wave))
        seconds["/why"] = time.perf_counter() - started
        stages.append((f"worst inputs as /why (each once, {at_once} at once)", status_mb()))
        outcome: dict[str, float] = {}
        if message_count:
            outcome = await message_burst(bot, message_count, burst_s, channels)
            stages.append((f"{message_count:,} worst inputs as messages in {burst_s:g} s", status_mb()))
    return {"stages": stages, "predictions_per_s": rate, "worst_seconds": seconds, "message_burst": outcome}


def child(folder: Path, args: argparse.Namespace) -> None:
    import asyncio
    import logging

    sys.path.insert(0, str(REPO))
    logging.basicConfig(level=logging.WARNING)
    options = (args.messages, args.burst, args.message_burst, args.message_burst_s, args.channels)
    print(json.dumps(asyncio.run(measure(folder, *options))))


def run_variant(folder: Path, args: argparse.Namespace, variant: str) -> dict:
    environ = dict(os.environ)
    if variant != "default":
        environ.update(assignment.split("=", 1) for assignment in variant.split())
    options = ["--messages", str(args.messages), "--burst", str(args.burst), "--message-burst", str(args.message_burst)]
    options += ["--message-burst-s", str(args.message_burst_s), "--channels", str(args.channels)]
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), *options],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    if result.returncode != 0:
        sys.exit(f"child for {variant} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=64, help="worst inputs of each kind sent at once as reactions")
    parser.add_argument("--message-burst", type=int, default=2000, help="worst inputs arriving as messages (0: none)")
    parser.add_argument("--message-burst-s", type=float, default=1.0, help="the time they arrive within")
    parser.add_argument("--channels", type=int, default=100, help="reaction-enabled channels they arrive in")
    parser.add_argument(
        "--variants",
        default="default;RUN=2",
        help="';'-separated",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args)

    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="whymoji-memory-") as tmp:
        folder = Path(tmp)
        write_model(folder)
        size = (folder / "pytorch_model.bin").stat().st_size / 1e6
        print(f"full-size seeded checkpoint: {size:.1f} MB; {os.cpu_count()} CPUs")
        variants = args.variants.split(";")
        results = {variant: run_variant(folder, args, variant) for variant in variants}
    names = [name for name, _ in next(iter(results.values()))["stages"]]
    width = max(24, *(len(variant) + 2 for variant in results))
    print(f"\n{'stage':<48}" + "".join(f"{variant:>{width}}" for variant in results))
    print(f"{'':<48}" + "".join(f"{'RSS MB / peak MB':>{width}}" for _ in results))
    for index, name in enumerate(names):
        cells = "".join(
            f"{result['stages'][index][1]['VmRSS']:>{width - 10}.0f} / {result['stages'][index][1]['VmHWM']:>7.0f}"
            for result in results.values()
        )
        print(f"{name:<48}{cells}")
    rates = "".join(f"{result['predictions_per_s']:>{width}.0f}" for result in results.values())
    print(f"{'predictions per second (shared, noisy machine)':<48}{rates}")
    for kind in ("reactions", "/why"):
        cells = "".join(f"{result['worst_seconds'][kind]:>{width}.1f}" for result in results.values())
        print(f"{f'seconds for the worst inputs as {kind}':<48}{cells}")
    for variant, result in results.items():
        if result["message_burst"]:
            outcome = {key: round(value, 1) for key, value in result["message_burst"].items()}
            print(f"{variant}: message burst {outcome}")
    for variant, result in results.items():
        peak = max(values["VmHWM"] for _, values in result["stages"])
        verdict = "under" if peak < TARGET_MB else "OVER"
        print(f"{variant}: peak {peak:.0f} MB, {verdict} the {TARGET_MB} MB target")


if __name__ == "__main__":
    main()
