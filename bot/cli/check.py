"""`whymoji check`: validate a deployment without touching Discord, and say what `run` would do.

One line each: token, endpoints, shards, the settings store (opened read-only: nothing is
created or migrated), the device, the model files (loaded, to prove they are usable), the health
address (bound for a moment) and the worker. Every problem is reported, not just the first, so
one run shows everything to fix, in the words `run` would use; the exit code is 1 if any. A
model that `run` would download first is a note, not a problem.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.cli.output import emit
from bot.cli.run import add_config_argument, add_no_download_argument
from bot.config import Config, ConfigError, load_config
from bot.errors import WhymojiError

#: What the first start downloads, for the note when the model files are not there yet.
DOWNLOAD_SIZE = "~85 MB"


class Note(str):
    """A finding that is not a problem, but that the reader should know before starting."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate the config, store, model files and health address without connecting to Discord",
        description="Validate everything `whymoji run` needs except Discord, and print what it would do.",
    )
    add_config_argument(parser)
    add_no_download_argument(parser)
    parser.set_defaults(handler=check)


def check(args: argparse.Namespace) -> int:
    emit(f"config: {args.config or 'defaults and WHYMOJI_* environment variables'}")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        for problem in error.problems:
            emit(f"  config: PROBLEM: {problem}")
        return _summary(len(error.problems), notes=0)
    return asyncio.run(_report(config, download=not args.no_download))


async def _report(config: Config, *, download: bool) -> int:
    problems = notes = 0
    for label, describe in _checks(config, download):
        try:
            found = await describe()
        except WhymojiError as error:
            problems += 1
            found = f"PROBLEM: {error}"
        if isinstance(found, Note):
            notes += 1
            found = f"note: {found}"
        emit(f"  {label}: {found}")
    return _summary(problems, notes)


def _summary(problems: int, notes: int) -> int:
    if problems:
        emit(f"{problems} problem{'s' if problems > 1 else ''} found")
        return 1
    emit("all good" + (f" ({notes} note{'s' if notes > 1 else ''})" if notes else ""))
    return 0


def _checks(config: Config, download: bool) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
    async def commands() -> str:
        return "synced on start" if config.discord.sync_commands else "not synced on start"

    async def worker() -> str:
        return (
            f"batches of up to {config.worker.max_batch}, waiting at most "
            f"{config.worker.max_wait_ms:g} ms, queue of {config.worker.queue_size}"
        )

    return [
        ("token", lambda: _token(config)),
        ("discord", lambda: _endpoints(config)),
        ("shards", lambda: _shards(config)),
        ("commands", commands),
        ("store", lambda: _store(config)),
        ("device", lambda: _device(config)),
        ("model", lambda: _model(config, download)),
        ("health", lambda: _health(config)),
        ("worker", worker),
    ]


async def _token(config: Config) -> str:
    if not config.discord.token:
        raise WhymojiError("not set: set the DISCORD_TOKEN environment variable or discord.token_file")
    return "set" + (f" (from {config.discord.token_file})" if config.discord.token_file else " (from DISCORD_TOKEN)")


async def _endpoints(config: Config) -> str:
    rest, gateway = config.discord.api_base_url, config.discord.gateway_url
    if rest is None and gateway is None:
        return "discord.com"
    return f"REST {rest or 'discord.com'}, gateway {gateway or 'discord.com'}"


async def _shards(config: Config) -> str:
    count, ids = config.discord.shard_count, config.discord.shard_ids
    if count is None:
        return "all, as many as Discord recommends"
    if ids is None:
        return f"all {count} shards in this process"
    return f"{', '.join(map(str, ids))} of {count} in this process"


async def _store(config: Config) -> str:
    from bot.store.probe import probe_store

    return await probe_store(config.database.url)


async def _device(config: Config) -> str:
    from bot.deepmoji.device import require_device  # imports torch: only when checking
    from bot.deepmoji.threads import resolve_threads

    require_device(config.model.device)
    threads = resolve_threads(config.model.threads)
    return f"{config.model.device}, threads: {threads.runtime} for predictions, {threads.torch} for /why"


async def _model(config: Config, download: bool) -> str:
    # Imported here: loading torch models is the slow part, and only this check needs it.
    from bot.deepmoji.engine import Engine
    from bot.deepmoji.files import NotDownloaded
    from bot.serving.loading import locate_model_files

    try:
        files = locate_model_files(config.model, download=False)
    except NotDownloaded:
        if not download or config.model.offline:
            raise
        return Note(
            f"not downloaded yet: `whymoji run` will first download {DOWNLOAD_SIZE} from the Hugging "
            f"Face Hub repository {config.model.repo_id} into {config.model.cache_dir or 'the Hugging Face cache'}"
        )
    started = time.perf_counter()
    engine = Engine.load(
        files, device=config.model.device, max_tokens=config.model.max_tokens, precision=config.model.precision
    )
    seconds = time.perf_counter() - started
    model = engine.model
    return (
        f"weights {files.weights}, vocabulary {files.vocabulary}: loaded in {seconds:.1f} s "
        f"({model.vocab_size} words, {model.num_classes} classes)"
    )


async def _health(config: Config) -> str:
    """Bind the address for a moment: a port in use or an unknown host is the error `run` gives."""
    if not config.health.enabled:
        return "disabled"
    from bot.metrics import Metrics
    from bot.serving.health import STARTING, Health, HealthServer

    server = HealthServer(Metrics(), lambda: Health(STARTING), host=config.health.host, port=config.health.port)
    await server.start()
    await server.close()
    host = f"[{config.health.host}]" if ":" in config.health.host else config.health.host
    return f"http://{host}:{config.health.port}/healthz and /metrics (free to listen on)"
