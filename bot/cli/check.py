"""`whymoji check`: validate a deployment without touching Discord, and say what `run` would do.

It reads the configuration `run` reads (the same file, variables and flags). One line each:
token, endpoints, shards, the settings store (opened read-only: nothing is created or migrated),
the device, the model files (loaded, to prove they are usable), the health address (bound for a
moment) and the worker. Every problem is reported, not just the first, so one run shows
everything to fix, in the words `run` would use; the exit code is 1 if any. Every relative path
is shown resolved, as `run` started from the same folder would use it.

A model that `run` would download first is a note saying how much, once one short request has
shown the Hub can be reached; a Hub that cannot be, or offline mode with files missing, is a
problem: `run` could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.cli.model_options import add_model_arguments, load_settings
from bot.cli.output import emit
from bot.config import CONFIG_ENV, Config, ConfigError, config_path
from bot.errors import WhymojiError


class Note(str):
    """A finding that is not a problem, but that the reader should know before starting."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate the config, store, model files and health address without connecting to Discord",
        description="Validate everything `whymoji run` needs except Discord, and print what it would do.",
    )
    add_model_arguments(parser)
    parser.set_defaults(handler=check)


def check(args: argparse.Namespace) -> int:
    path = config_path(args.config)
    if path is None:
        emit("config: none: defaults and WHYMOJI_* environment variables")
    else:
        emit(f"config: {path.absolute()}" + ("" if args.config else f" (from {CONFIG_ENV})"))
    try:
        config = load_settings(args)
    except ConfigError as error:
        for problem in error.problems:
            emit(f"  config: PROBLEM: {problem}")
        return _summary(len(error.problems), notes=0)
    return asyncio.run(_report(config))


async def _report(config: Config) -> int:
    problems = notes = 0
    for label, describe in _checks(config):
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


def _checks(config: Config) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
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
        ("model", lambda: _model(config)),
        ("health", lambda: _health(config)),
        ("worker", worker),
    ]


async def _token(config: Config) -> str:
    if not config.discord.token:
        raise WhymojiError("not set: set the DISCORD_TOKEN environment variable or discord.token_file")
    token_file = config.discord.token_file
    return "set" + (f" (from {token_file.absolute()})" if token_file else " (from DISCORD_TOKEN)")


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

    url = config.database.url
    where = _relative_sqlite(url)
    try:
        return await probe_store(url) + where
    except WhymojiError as error:
        raise WhymojiError(f"{error}{where}") from None


def _relative_sqlite(url: str) -> str:
    """For a SQLite URL with a relative path, where the file is: `run` opens it relative to the
    folder it starts in (under systemd, ``WorkingDirectory=``)."""
    from bot.store.sqlite import MEMORY, PREFIX

    path = url.removeprefix(PREFIX)
    if not url.startswith(PREFIX) or path == MEMORY or not path or Path(path).is_absolute():
        return ""
    return f" (relative to the folder whymoji runs in: {Path(path).absolute()})"


async def _device(config: Config) -> str:
    from bot.deepmoji.device import require_device  # imports torch: only when checking
    from bot.deepmoji.threads import resolve_threads

    require_device(config.model.device)
    threads = resolve_threads(config.model.threads)
    return f"{config.model.device}, threads: {threads.runtime} for predictions, {threads.torch} for /why"


async def _model(config: Config) -> str:
    # Imported here: loading torch models is the slow part, and only this check needs it.
    from bot.deepmoji.engine import Engine
    from bot.deepmoji.files import NotDownloaded, download_sizes, hub_unreachable, probe_hub
    from bot.serving.loading import locate_model_files

    try:
        files = locate_model_files(config.model, download=False)
    except NotDownloaded as missing:
        if missing.offline:
            raise  # `run` could not start
        source = missing.source
        probe = await asyncio.to_thread(probe_hub, source)  # one request, a short timeout
        if probe.problem is not None:
            raise hub_unreachable(source, missing.missing, probe.problem) from None
        return Note(
            f"not downloaded yet: `whymoji run` will first download {download_sizes(missing.missing)} from the "
            f"Hugging Face Hub repository {source.repo_id} at {source.address} (it answers) into {source.cache}"
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
