"""The store reads behind every reaction while another process holds SQLite's write lock.

Each message the bot reacts to first reads its server's settings and its author's opt-out
(``get_guild`` + ``is_opted_out``); that is the part of a reaction the database can stall. This
sends those reads as messages arrive (``--rate`` per second for ``--seconds``, each read its own
task, as concurrent messages are) and times each message's pair, twice, side by side:

- **no lock**: the file is free;
- **write lock held elsewhere**: a second process has run ``BEGIN IMMEDIATE`` and holds the lock
  for the whole run, and the bot always has a write waiting for it (a manager's ``/whymoji``
  command, retried whenever it fails), which is what made reads queue when the store had one
  connection.

It prints median, p99 and max per message, and how many reads failed. It uses only
``open_store``, ``get_guild``, ``is_opted_out`` and ``update_guild``, so it runs against older code
too: from another checkout's root, ``PYTHONPATH=. python /path/to/bench_store_lock.py`` measures
that checkout's store.

    .venv/bin/python -m benchmarks.bench_store_lock [--rate 50] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from contextlib import suppress

from bot.store import GuildDefaults, SettingsStore, StoreError, open_store
from tests.store.test_sqlite_lock import write_lock_held_elsewhere

DEFAULTS = GuildDefaults(top_k=3, threshold=0.1, cooldown_s=2.0, mod_threshold=0.5)
GUILD, CHANNEL, USER = 111111111111111111, 222222222222222222, 333333333333333333


async def keep_a_write_waiting(store: SettingsStore) -> None:
    """A manager's change, retried whenever it fails: there is always a write waiting."""
    top_k = 1
    while True:
        top_k = top_k % 10 + 1
        with suppress(StoreError):
            await store.update_guild(GUILD, top_k=top_k)


async def messages(store: SettingsStore, rate: float, seconds: float) -> tuple[list[float], int]:
    """Milliseconds each message's reads took, and how many failed."""
    latencies: list[float] = []
    failed = 0

    async def message(number: int) -> None:
        nonlocal failed
        start = time.perf_counter()
        try:
            await store.get_guild(GUILD)
            await store.is_opted_out(USER + number)
        except StoreError:
            failed += 1
            return
        latencies.append((time.perf_counter() - start) * 1000)

    loop = asyncio.get_running_loop()
    started = loop.time()
    tasks = []
    for number in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + number / rate - loop.time()))
        tasks.append(asyncio.create_task(message(number)))
    await asyncio.gather(*tasks)
    return latencies, failed


def summary(latencies: list[float], failed: int) -> str:
    if not latencies:
        return f"{'-':>9} {'-':>9} {'-':>9} {0:>6} {failed:>7}"
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{statistics.median(ordered):9.2f} {p99:9.2f} {ordered[-1]:9.2f} {len(ordered):6d} {failed:7d}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long messages arrive, per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each condition, alternating")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.sqlite3")
        store = await open_store(f"sqlite:///{path}", DEFAULTS)
        try:
            await store.update_guild(GUILD, top_k=4, mod_channel_id=CHANNEL)
            await store.set_channel_enabled(GUILD, CHANNEL, True)
            results: dict[str, tuple[list[float], int]] = {"no lock": ([], 0), "write lock held elsewhere": ([], 0)}
            for _ in range(args.rounds):
                latencies, failed = await messages(store, args.rate, args.seconds)
                results["no lock"] = (results["no lock"][0] + latencies, results["no lock"][1] + failed)
                async with write_lock_held_elsewhere(path):
                    writer = asyncio.create_task(keep_a_write_waiting(store))
                    latencies, failed = await messages(store, args.rate, args.seconds)
                    writer.cancel()
                    with suppress(asyncio.CancelledError):
                        await writer
                held = results["write lock held elsewhere"]
                results["write lock held elsewhere"] = (held[0] + latencies, held[1] + failed)
        finally:
            await store.close()

    print(
        f"load average {os.getloadavg()[0]:.2f}; {args.rate:g} messages/s for {args.seconds:g} s, {args.rounds} rounds"
    )
    print(f"{'store reads per message, ms':28s} {'median':>9} {'p99':>9} {'max':>9} {'reads':>6} {'failed':>7}")
    for name, (latencies, failed) in results.items():
        print(f"{name:28s} {summary(latencies, failed)}")


if __name__ == "__main__":
    asyncio.run(main())
