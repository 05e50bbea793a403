"""`whymoji check`: validate a deployment's config and model files without touching Discord.

It prints what `whymoji run` would do (store, shards, model files, device, health address), one
line each, and loads the vocabulary and checkpoint to prove they are usable. Every problem is
reported, not just the first, so one run shows everything to fix; the exit code is 1 if any.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bot.cli.run import add_config_argument
from bot.config import Config, load_config, redact_url
from bot.errors import WhymojiError
from bot.startup import locate_model_files, require_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate the config and model files without connecting to Discord",
        description="Validate the config and the model files and print what `whymoji run` would do.",
    )
    add_config_argument(parser)
    parser.set_defaults(handler=check)


def check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    print(f"config: {args.config or 'defaults and WHYMOJI_* environment variables'}")
    problems = 0
    for label, describe in _checks(config):
        try:
            line = f"  {label}: {describe()}"
        except WhymojiError as error:
            problems += 1
            line = f"  {label}: PROBLEM: {error}"
        print(line, flush=True)
    if problems:
        print(f"{problems} problem{'s' if problems > 1 else ''} found")
        return 1
    print("all good")
    return 0


def _checks(config: Config) -> list[tuple[str, Callable[[], str]]]:
    return [
        ("token", lambda: _token(config)),
        ("discord", lambda: _endpoints(config)),
        ("shards", lambda: _shards(config)),
        ("commands", lambda: "synced on start" if config.discord.sync_commands else "not synced on start"),
        ("store", lambda: redact_url(config.database.url)),
        ("device", lambda: _device(config)),
        ("model", lambda: _model(config)),
        ("health", lambda: _health(config)),
        (
            "worker",
            lambda: f"batches of up to {config.worker.max_batch}, waiting at most "
            f"{config.worker.max_wait_ms:g} ms, queue of {config.worker.queue_size}",
        ),
    ]


def _token(config: Config) -> str:
    if not config.discord.token:
        raise WhymojiError("not set: set the DISCORD_TOKEN environment variable or discord.token_file")
    return "set" + (f" (from {config.discord.token_file})" if config.discord.token_file else " (from DISCORD_TOKEN)")


def _endpoints(config: Config) -> str:
    rest, gateway = config.discord.api_base_url, config.discord.gateway_url
    if rest is None and gateway is None:
        return "discord.com"
    return f"REST {rest or 'discord.com'}, gateway {gateway or 'discord.com'}"


def _shards(config: Config) -> str:
    count, ids = config.discord.shard_count, config.discord.shard_ids
    if count is None:
        return "all, as many as Discord recommends"
    if ids is None:
        return f"all {count} shards in this process"
    return f"{', '.join(map(str, ids))} of {count} in this process"


def _device(config: Config) -> str:
    require_device(config.model.device)
    threads = config.model.threads or "automatic"
    return f"{config.model.device}, torch threads: {threads}"


def _model(config: Config) -> str:
    # Imported here: loading torch models is the slow part, and only this check needs it.
    from bot.deepmoji.engine import Engine

    files = locate_model_files(config.model, download=False)
    started = time.perf_counter()
    engine = Engine.load(files, device=config.model.device, max_tokens=config.model.max_tokens)
    seconds = time.perf_counter() - started
    model = engine.model
    return (
        f"weights {files.weights}, vocabulary {files.vocabulary}: loaded in {seconds:.1f} s "
        f"({model.vocab_size} words, {model.num_classes} classes)"
    )


def _health(config: Config) -> str:
    if not config.health.enabled:
        return "disabled"
    host = f"[{config.health.host}]" if ":" in config.health.host else config.health.host
    return f"http://{host}:{config.health.port}/healthz and /metrics"
