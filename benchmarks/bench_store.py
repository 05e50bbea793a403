"""Settings-store read latency: why the store has no cache.

Every message the bot reads costs a ``get_guild`` and an ``is_opted_out``. This prints the
mean time per call for SQLite (a file in a temp folder) and, when a PostgreSQL URL is given
(``--postgres`` or ``WHYMOJI_TEST_POSTGRES_URL``), for PostgreSQL in a throwaway schema,
interleaving the backends round by round so the machine's noise hits them alike. It also
prices what every access pays for ``/healthz`` and a vanished SQLite file (the access tracking
and the file ``stat``): the same SQLite file through a store with both switched off.

    .venv/bin/python -m benchmarks.bench_store [--calls 2000] [--rounds 3] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
import uuid

from bot.store import GuildDefaults, SettingsStore, open_store

DEFAULTS = GuildDefaults(top_k=3, threshold=0.1, cooldown_s=2.0, mod_threshold=0.5)
GUILD, CHANNEL, USER = 111111111111111111, 222222222222222222, 333333333333333333


async def seeded_store(url: str) -> SettingsStore:
    store = await open_store(url, DEFAULTS)
    await store.update_guild(GUILD, top_k=4, mod_channel_id=CHANNEL)
    await store.set_channel_enabled(GUILD, CHANNEL, True)
    return store


def unchecked(store: SettingsStore) -> SettingsStore:
    """``store`` without the vanished-file check and the access tracking, as before they existed."""
    store._database._identity = None
    store._tracker.access = contextlib.nullcontext
    return store


def time_checks(store: SettingsStore, calls: int) -> float:
    """Mean microseconds one access spends on the file check and the tracking alone."""
    start = time.perf_counter()
    for _ in range(calls):
        store._database._check_file()
        with store._tracker.access():
            pass
    return (time.perf_counter() - start) / calls * 1e6


async def time_calls(store: SettingsStore, calls: int) -> dict[str, float]:
    """Mean microseconds per call of each read a message costs."""
    reads = {"get_guild": lambda: store.get_guild(GUILD), "is_opted_out": lambda: store.is_opted_out(USER)}
    figures = {}
    for name, read in reads.items():
        start = time.perf_counter()
        for _ in range(calls):
            await read()
        figures[name] = (time.perf_counter() - start) / calls * 1e6
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per read per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("WHYMOJI_TEST_POSTGRES_URL"))
    args = parser.parse_args()

    folder = tempfile.TemporaryDirectory()
    sqlite_url = f"sqlite:///{folder.name}/bench.sqlite3"
    stores = {
        "sqlite": await seeded_store(sqlite_url),
        "sqlite, unchecked": unchecked(await open_store(sqlite_url, DEFAULTS)),
    }
    schema = None
    if args.postgres:
        import asyncpg

        schema = f"bench_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in args.postgres else "?"
        stores["postgresql"] = await seeded_store(f"{args.postgres}{separator}search_path={schema}")
    try:
        results: dict[str, dict[str, list[float]]] = {name: {} for name in stores}
        checks: list[float] = []
        for round_number in range(args.rounds):
            names = list(stores)
            for name in names[round_number % len(names) :] + names[: round_number % len(names)]:  # rotate
                store = stores[name]
                for read, micros in (await time_calls(store, args.calls)).items():
                    results[name].setdefault(read, []).append(micros)
            checks.append(time_checks(stores["sqlite"], args.calls))
        for name, reads in results.items():
            line = ", ".join(f"{read} {statistics.median(values):7.0f} us" for read, values in reads.items())
            print(f"{name:17s} {line}  (median of {args.rounds} rounds x {args.calls} calls)")
        for read in results["sqlite"]:
            ratio = statistics.median(results["sqlite"][read]) / statistics.median(results["sqlite, unchecked"][read])
            print(f"sqlite / unchecked {read}: {ratio:.3f}x")
        check = statistics.median(checks)
        share = 2 * check / statistics.median(results["sqlite"]["get_guild"])  # get_guild makes two accesses
        print(f"file check + tracking alone: {check:.1f} us per access, {share:.1%} of a get_guild")
        if "postgresql" in results:
            ratio = statistics.median(results["postgresql"]["get_guild"]) / statistics.median(
                results["sqlite"]["get_guild"]
            )
            print(f"postgresql / sqlite get_guild: {ratio:.1f}x")
    finally:
        for store in stores.values():
            await store.close()
        if schema is not None:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
            await admin.close()
        folder.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
