"""WhymojiBot and run_bot: wiring from a Config, the fake Discord end to end, shutdown, shards."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
import discord
import numpy as np
import pytest
import torch
from discord.ext import commands

from bot.app import EXTENSIONS, MissingToken, WhymojiBot, run_bot, serve
from bot.config import load_config
from bot.deepmoji.device import DeviceError
from bot.deepmoji.engine import Engine
from bot.serving.discord_proxy import current_endpoints, use_endpoints
from tests.conftest import free_port
from tests.fake_discord import FakeDiscord
from tests.fake_discord.client import connected, endpoints_of


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """The bot sets torch's thread count process-wide; the rest of the suite must not inherit it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def make_config(tmp_path, model_dir, fake: FakeDiscord | None = None, **settings: str):
    """A Config as `whymoji run` would build it from the environment, on the small model."""
    environ = {
        "DISCORD_TOKEN": "fake-bot-token" if fake is None else fake.token,
        "WHYMOJI_MODEL_WEIGHTS": str(model_dir / "pytorch_model.bin"),
        "WHYMOJI_MODEL_VOCABULARY": str(model_dir / "vocabulary.json"),
        "WHYMOJI_DATABASE_URL": f"sqlite:///{tmp_path / 'settings.sqlite3'}",
        "WHYMOJI_HEALTH_PORT": "0",
        "WHYMOJI_DISCORD_SYNC_COMMANDS": "false",
    }
    if fake is not None:
        environ["WHYMOJI_DISCORD_API_BASE_URL"] = fake.api_base_url
        environ["WHYMOJI_DISCORD_GATEWAY_URL"] = fake.gateway_url
    environ.update({f"WHYMOJI_{key.upper()}": value for key, value in settings.items()})
    return load_config(None, environ)


async def healthz(port: int) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
            return response.status, await response.json()


async def wait_healthy(port: int, timeout: float = 30.0, alive=lambda: True) -> dict:
    """/healthz's body once it answers 200 (a moment after connecting); fails early if not alive()."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        assert alive(), "the bot stopped before becoming healthy"
        try:
            status, body = await healthz(port)
            if status == 200:
                return body
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise TimeoutError(f"/healthz on port {port} did not answer 200 within {timeout} s")


def test_client_settings_come_from_the_config(tmp_path, small_model_dir):
    bot = WhymojiBot(make_config(tmp_path, small_model_dir, discord_shard_count="4", discord_shard_ids="1,3"))
    expected = discord.Intents.none()
    expected.guilds = expected.guild_messages = expected.message_content = True
    assert bot.intents == expected
    mentions = bot.allowed_mentions
    assert not (mentions.everyone or mentions.users or mentions.roles or mentions.replied_user)
    assert bot.shard_count == 4 and bot.shard_ids == [1, 3]
    assert bot.command_prefix is commands.when_mentioned
    assert bot.help_command is None and not bot.commands


async def test_setup_wires_every_piece_from_the_config_without_discord(tmp_path, small_model_dir):
    config = make_config(
        tmp_path,
        small_model_dir,
        reactions_top_k="5",
        moderation_threshold="0.25",
        model_threads="1",
        worker_max_explanations="2",
        worker_explanations_in_progress="2",
    )
    bot = WhymojiBot(config)
    async with bot:
        await bot.setup_hook()
        assert isinstance(bot.engine, Engine)
        assert torch.get_num_threads() == 1
        assert bot.engine.model.vocab_size == len(bot.engine.tokenizer.vocabulary)
        assert (await bot.worker.predict("i love you so much")).shape == (64,)
        assert bot.predictions is bot.predictions and bot.prepared  # one per bot, built by prepare
        assert (bot.worker.max_explanations, bot.worker.explanations_in_progress) == (2, 2)
        settings = await bot.store.get_guild(123)
        assert (settings.top_k, settings.mod_threshold) == (5, 0.25)
        assert set(bot.extensions) == set(EXTENSIONS)
        assert bot.tree.get_commands(), "the cogs register application commands"
        port = bot.health_server.port
        status, body = await healthz(port)
        assert (status, body["status"]) == (503, "starting")
    assert bot.stopping
    with pytest.raises(aiohttp.ClientConnectionError):
        await healthz(port)


async def test_close_goes_in_order_and_lets_queued_work_finish(tmp_path, small_model_dir):
    bot = WhymojiBot(make_config(tmp_path, small_model_dir), extensions=())
    order: list[str] = []
    health_while_closing: list[tuple[int, str]] = []

    def spy(name, close):
        async def recorded(*args, **kwargs):
            order.append(name)
            if name == "worker":
                status, body = await healthz(bot.health_server.port)
                health_while_closing.append((status, body["status"]))
            return await close(*args, **kwargs)

        return recorded

    async with bot:
        await bot.setup_hook()
        bot.worker.close = spy("worker", bot.worker.close)
        bot.http.close = spy("gateway and HTTP", bot.http.close)
        bot.store.close = spy("store", bot.store.close)
        bot.health_server.close = spy("health", bot.health_server.close)
        texts = [f"message number {i} is so good" for i in range(20)]
        predictions = [asyncio.create_task(bot.worker.predict(text)) for text in texts]
        explanation = asyncio.create_task(bot.worker.explain("why do you love this so much"))
        await asyncio.sleep(0)  # the requests are queued, not yet answered
        await bot.close()
        await bot.close()  # a second close waits for the first and does nothing more

    assert order == ["worker", "gateway and HTTP", "store", "health"]
    assert health_while_closing == [(503, "stopping")]
    for task in predictions:
        row = task.result()
        assert row.shape == (64,) and np.isclose(row.sum(), 1, atol=1e-4)
    assert explanation.result().words


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
async def test_cuda_without_cuda_fails_setup_clearly(tmp_path, small_model_dir):
    bot = WhymojiBot(make_config(tmp_path, small_model_dir, model_device="cuda"), extensions=())
    async with bot:
        with pytest.raises(DeviceError, match='model.device is "cuda"'):
            await bot.setup_hook()
    assert not bot.prepared


async def test_end_to_end_ready_healthy_commands_synced_then_closed(tmp_path, small_model_dir):
    config = make_config(tmp_path, small_model_dir, discord_sync_commands="true")
    async with FakeDiscord() as fake:
        bot = WhymojiBot(config, guild_ready_timeout=0.1)
        async with connected(bot, fake):
            port = bot.health_server.port
            status, body = await healthz(port)
            assert status == 200 and body["status"] == "ready"
            assert body["shards"]["0"]["connected"] and body["guilds"] == 1
            local = {command.name for command in bot.tree.get_commands()}
            assert local and local == {command["name"] for command in fake.commands.global_commands}
        assert bot.is_closed()
    with pytest.raises(aiohttp.ClientConnectionError):
        await healthz(port)


async def test_healthz_turns_503_when_the_gateway_connection_is_lost(tmp_path, small_model_dir):
    fake = await FakeDiscord().start()
    bot = WhymojiBot(make_config(tmp_path, small_model_dir, fake), extensions=(), guild_ready_timeout=0.1)
    try:
        async with endpoints_of(fake), bot:
            running = asyncio.create_task(bot.start(fake.token))
            await fake.wait_until_connected()
            await asyncio.wait_for(bot.wait_until_ready(), 20)
            port = bot.health_server.port
            assert (await healthz(port))[0] == 200
            await fake.stop()  # Discord goes away: the shard keeps trying to reconnect
            for _ in range(100):
                status, body = await healthz(port)
                if status != 200:
                    break
                await asyncio.sleep(0.05)
            assert (status, body["status"]) == (503, "reconnecting")
            assert body["shards"]["0"]["connected"] is False
            await bot.close()
            await asyncio.wait_for(running, 10)
    finally:
        await fake.stop()


async def test_two_processes_split_the_shards_and_share_settings(tmp_path, small_model_dir):
    """Each bot runs one of two shards, as two processes would, over one settings database."""
    async with FakeDiscord(shard_count=2) as fake:
        for name in ("second", "third", "fourth"):
            fake.world.add_member(fake.world.add_guild(name, fake.owner), fake.bot_user)
        bots = [
            WhymojiBot(
                make_config(tmp_path, small_model_dir, discord_shard_count="2", discord_shard_ids=str(shard)),
                extensions=(),
                guild_ready_timeout=0.1,
            )
            for shard in (0, 1)
        ]
        async with connected(bots[0], fake), connected(bots[1], fake):
            for shard, bot in enumerate(bots):
                _, body = await healthz(bot.health_server.port)
                assert list(body["shards"]) == [str(shard)]
                expected = {g.id for g in fake.world.guilds.values() if fake.shard_of(g.id) == shard}
                assert {guild.id for guild in bot.guilds} == expected
            guild_id = fake.guild.id
            await bots[0].store.update_guild(guild_id, top_k=7)
            await bots[0].store.set_channel_enabled(guild_id, fake.general.id, True)
            seen = await bots[1].store.get_guild(guild_id)
            assert seen.top_k == 7 and fake.general.id in seen.enabled_channels


async def test_run_bot_shuts_down_in_order_on_sigterm(tmp_path, small_model_dir):
    port = free_port()
    before = current_endpoints()
    try:
        async with FakeDiscord() as fake:
            running = asyncio.create_task(run_bot(make_config(tmp_path, small_model_dir, fake, health_port=str(port))))
            assert (await wait_healthy(port, alive=lambda: not running.done()))["status"] == "ready"
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(running, 15)
            await fake.wait_for(lambda: fake.gateway.sessions[0].connection is None, 5, "the bot to disconnect")
    finally:
        use_endpoints(before.api_base_url, before.gateway_url)
    with pytest.raises(aiohttp.ClientConnectionError):
        await healthz(port)


async def test_a_second_sigterm_exits_at_once_while_shutdown_is_under_way(tmp_path, small_model_dir, monkeypatch):
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    async with FakeDiscord() as fake, endpoints_of(fake):
        bot = WhymojiBot(make_config(tmp_path, small_model_dir, fake), extensions=(), guild_ready_timeout=0.1)
        serving = asyncio.create_task(serve(bot, fake.token))
        await fake.wait_until_connected()
        await asyncio.wait_for(bot.wait_until_ready(), 20)
        store_closing, release = asyncio.Event(), asyncio.Event()
        close_store = bot.store.close

        async def slow_store_close():
            store_closing.set()
            await release.wait()
            await close_store()

        bot.store.close = slow_store_close
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.wait_for(store_closing.wait(), 10)  # the orderly shutdown is under way
            assert exits == []
            os.kill(os.getpid(), signal.SIGTERM)
            await fake.wait_for(lambda: exits, 5, "the second SIGTERM to exit")
            assert exits == [128 + signal.SIGTERM]
        finally:
            release.set()
            await asyncio.wait_for(serving, 10)


async def test_run_bot_without_a_token_says_how_to_set_one():
    config = load_config(None, {"WHYMOJI_HEALTH_ENABLED": "false"})
    with pytest.raises(MissingToken, match="DISCORD_TOKEN") as raised:
        await run_bot(config)
    assert "\n" not in str(raised.value)


async def test_an_interaction_that_arrives_while_stopping_is_answered_restarting(tmp_path, small_model_dir):
    from bot.app import RESTARTING
    from tests.cog_fakes import answers, make_interaction

    bot = WhymojiBot(make_config(tmp_path, small_model_dir), extensions=())
    running, arriving_late = make_interaction(), make_interaction()
    assert await bot.tree.interaction_check(running)
    bot.stopping = True
    assert not await bot.tree.interaction_check(arriving_late)  # no command starts
    (answer,) = answers(arriving_late)
    assert (answer["content"], answer["ephemeral"], answer["allowed_mentions"].to_dict()) == (
        RESTARTING,
        True,
        {"parse": []},
    )
    assert answers(running) == [] and bot.shutdown_report.turned_away == 1
