"""Running the real whymoji bot against a FakeDiscord: its config file, its start and stop.

Shared by the end-to-end tests and ``benchmarks/load.py``. The bot starts the way ``whymoji
run`` starts it (``load_config`` from a TOML file plus ``DISCORD_TOKEN``, ``use_endpoints``,
``WhymojiBot`` in ``async with``, ``start(token)``), minus the signal handlers, so a test can
stop it and start another one on the same database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch

from bot.app import WhymojiBot
from bot.config import Config, load_config
from bot.serving.discord_proxy import use_endpoints

from .server import FakeDiscord


def write_config(
    path: Path,
    fake: FakeDiscord,
    *,
    weights: Path,
    vocabulary: Path,
    database: Path,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Write a TOML config pointing at ``fake`` and local model files; load it like the CLI does.

    Defaults suit tests: no per-channel cooldown, no pause between a user's ``/why`` requests, no
    health server, offline model files, one torch thread (on a busy machine, torch's own thread pool can make a tiny model 50x slower).
    ``overrides`` maps section -> key -> value on top.
    """
    sections: dict[str, dict[str, Any]] = {
        "discord": {"api_base_url": fake.api_base_url, "gateway_url": fake.gateway_url},
        "model": {"weights": str(weights), "vocabulary": str(vocabulary), "offline": True, "threads": 1},
        "reactions": {"cooldown_s": 0.0},
        "why": {"cooldown_s": 0.0},
        "database": {"url": f"sqlite:///{database}"},
        "health": {"enabled": False},
    }
    for section, values in (overrides or {}).items():
        sections.setdefault(section, {}).update(values)
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path, environ={"DISCORD_TOKEN": fake.token})


@asynccontextmanager
async def running_whymoji(fake: FakeDiscord, config: Config, timeout: float = 30.0) -> AsyncIterator[WhymojiBot]:
    """Start the bot, wait until it has joined the fake's guild, stop it (in order) afterwards.

    The process-wide settings the bot changes (discord.py's endpoints, torch's thread count)
    are put back, so later tests in the same process are unaffected.
    """
    previous = use_endpoints(config.discord.api_base_url, config.discord.gateway_url)
    torch_threads = torch.get_num_threads()
    bot = WhymojiBot(config, download=False)

    async def run() -> None:
        async with bot:
            await bot.start(config.discord.token)

    task = asyncio.create_task(run(), name="whymoji under test")
    try:
        await fake.wait_for(
            lambda: task.done() or bot.get_guild(fake.guild.id) is not None, timeout, "the bot to join the guild"
        )
        if task.done():
            await task  # start-up failed: raise its error here
            raise RuntimeError("the bot stopped during start-up")
        yield bot
    finally:
        await bot.close()
        try:
            await asyncio.wait_for(task, timeout)
        finally:
            use_endpoints(previous.api_base_url, previous.gateway_url)
            torch.set_num_threads(torch_threads)
