"""Pointing discord.py at a FakeDiscord, and running any discord.py client against it for a block."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import discord

from bot.serving.discord_proxy import use_endpoints

from .server import FakeDiscord


@asynccontextmanager
async def endpoints_of(fake: FakeDiscord) -> AsyncIterator[None]:
    """discord.py's REST and gateway endpoints aimed at ``fake`` in the block, restored after,
    so later tests in the same process reach whatever they reached before."""
    previous = use_endpoints(fake.api_base_url, fake.gateway_url)
    try:
        yield
    finally:
        use_endpoints(previous.api_base_url, previous.gateway_url)


@asynccontextmanager
async def connected(client: discord.Client, fake: FakeDiscord, timeout: float = 20.0) -> AsyncIterator[discord.Client]:
    """``client`` running against ``fake`` (ready, every shard) until the block ends, then closed."""
    async with endpoints_of(fake), client:
        task = asyncio.create_task(client.start(fake.token))
        try:
            await asyncio.wait_for(client.wait_until_ready(), timeout)
            yield client
        finally:
            await client.close()
            await asyncio.wait_for(task, 10)
