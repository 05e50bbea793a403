"""The health server: /healthz follows the probe (a started bot's shards, store and worker),
/metrics serves the process's registry."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import WhymojiBot
from bot.config import load_config
from bot.metrics import Metrics
from bot.serving.health import (
    DEGRADED,
    FAILING,
    READY,
    RECONNECTING,
    STARTING,
    STOPPING,
    STORE_STALL_S,
    WORKER_STALL_S,
    Health,
    HealthServer,
    HealthServerError,
    assess,
    probe_url,
)
from bot.serving.health import main as health_main
from bot.serving.worker import WorkerStatus
from bot.store import SettingsStore, StoreError
from bot.store.status import StoreStatus
from tests.conftest import free_port
from tests.store.support import DEFAULTS, FakeDatabase


@pytest.fixture
async def served():
    """A running server on a free port whose probe answer the test can change."""
    state = {"health": Health(STARTING)}
    metrics = Metrics()
    server = HealthServer(metrics, lambda: state["health"], host="127.0.0.1", port=0)
    await server.start()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session:
        yield session, state, metrics, server.port
    await server.close()


async def test_healthz_is_503_while_starting_and_200_when_ready(served):
    session, state, _, _ = served
    async with session.get("/healthz") as response:
        assert response.status == 503
        assert (await response.json())["status"] == STARTING

    state["health"] = Health(READY, {"shards": {"0": {"connected": True}}, "latency_ms": 41.5})
    async with session.get("/healthz") as response:
        assert response.status == 200
        body = await response.json()
    assert body == {"status": READY, "shards": {"0": {"connected": True}}, "latency_ms": 41.5}


async def test_healthz_is_503_while_stopping(served):
    session, state, _, _ = served
    state["health"] = Health(STOPPING)
    async with session.get("/healthz") as response:
        assert response.status == 503
        assert (await response.json())["status"] == STOPPING


async def test_metrics_serves_the_processes_own_registry(served):
    session, _, metrics, _ = served
    metrics.reactions_placed.inc(3)
    metrics.reactions_shed.labels(reason="overloaded").inc()
    async with session.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("whymoji_reactions_placed_total", ())] == 3
    assert samples[("whymoji_reactions_shed_total", (("reason", "overloaded"),))] == 1


async def test_close_frees_the_port_and_can_be_repeated():
    server = HealthServer(Metrics(), lambda: Health(READY), host="127.0.0.1", port=0)
    await server.start()
    port = server.port
    await server.close()
    await server.close()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{port}/healthz")


async def test_a_busy_port_is_a_clear_error_naming_the_setting():
    first = HealthServer(Metrics(), lambda: Health(READY), host="127.0.0.1", port=0)
    await first.start()
    try:
        second = HealthServer(Metrics(), lambda: Health(READY), host="127.0.0.1", port=first.port)
        with pytest.raises(HealthServerError, match=f"127.0.0.1:{first.port} .*health.port"):
            await second.start()
    finally:
        await first.close()


async def test_the_container_probe_follows_healthz(served, tmp_path):
    _, state, _, port = served
    environ = {"WHYMOJI_HEALTH_HOST": "0.0.0.0", "WHYMOJI_HEALTH_PORT": str(port)}
    assert await asyncio.to_thread(health_main, environ) == 1  # still starting: 503
    state["health"] = Health(READY)
    assert await asyncio.to_thread(health_main, environ) == 0

    config = tmp_path / "whymoji.toml"
    config.write_text(f'[health]\nhost = "127.0.0.1"\nport = {port}\n')
    assert await asyncio.to_thread(health_main, {"WHYMOJI_CONFIG": str(config)}) == 0


def test_the_container_probe_fails_when_nothing_listens_or_health_is_off(capsys):
    port = free_port()
    assert health_main({"WHYMOJI_HEALTH_PORT": str(port)}, timeout=2) == 1
    assert f"http://127.0.0.1:{port}/healthz" in capsys.readouterr().out
    assert health_main({"WHYMOJI_HEALTH_ENABLED": "false"}) == 1
    assert health_main({"WHYMOJI_HEALTH_PORT": "many"}) == 1
    assert "WHYMOJI_HEALTH_PORT" in capsys.readouterr().out


def test_probe_url_reaches_a_wildcard_listener_through_loopback():
    assert probe_url("0.0.0.0", 8080) == "http://127.0.0.1:8080/healthz"
    assert probe_url("::", 9) == "http://127.0.0.1:9/healthz"
    assert probe_url("::1", 9) == "http://[::1]:9/healthz"
    assert probe_url("10.0.0.5", 80) == "http://10.0.0.5:80/healthz"


# -- what /healthz says of a started bot: shards, the settings store, the inference worker -----


def store_status(**changes) -> StoreStatus:
    fields = {"failing": False, "error": None, "last_ok_s_ago": 0.5, "oldest_pending_s": None}
    return StoreStatus(**fields | changes)


def worker_status(**changes) -> WorkerStatus:
    fields = {"queued": 2, "oldest_wait_s": 0.01, "busy_for_s": 0.02, "idle_for_s": None, "running": True}
    return WorkerStatus(**fields | changes)


def test_a_bot_whose_parts_all_work_is_ready_and_says_how_they_are():
    health = assess({0: True}, store_status(), worker_status(), guilds=3)
    assert health.healthy
    assert health.details == {
        "shards": {"0": {"connected": True}},
        "store": {
            "failing": False,
            "error": None,
            "last_ok_s_ago": 0.5,
            "oldest_pending_s": None,
            "writes_failing": False,
            "write_error": None,
            "oldest_pending_write_s": None,
        },
        "worker": {"running": True, "queued": 2, "oldest_wait_s": 0.01, "busy_for_s": 0.02, "idle_for_s": None},
        "guilds": 3,
    }


@pytest.mark.parametrize(
    ("store", "worker", "problem"),
    [
        (
            store_status(failing=True, error="SQLite database x was deleted"),
            worker_status(),
            "store: SQLite database x",
        ),
        (store_status(oldest_pending_s=STORE_STALL_S + 1), worker_status(), "store: a read has waited"),
        (store_status(), worker_status(busy_for_s=WORKER_STALL_S + 10), "worker: the current job has run for 40 s"),
        (store_status(), worker_status(busy_for_s=None, oldest_wait_s=WORKER_STALL_S + 1), "worker: a request has"),
        (store_status(), worker_status(running=False), "worker: not running"),
    ],
)
def test_a_failing_or_stuck_part_makes_the_bot_unhealthy_and_named(store, worker, problem):
    health = assess({0: True}, store, worker)
    assert not health.healthy and health.state == FAILING
    (said,) = health.details["problems"]
    assert said.startswith(problem)


def test_a_lost_shard_is_reconnecting_even_when_a_part_fails_too():
    health = assess({0: True, 1: False}, store_status(failing=True, error="down"), worker_status())
    assert health.state == RECONNECTING and health.details["problems"] == ["store: down"]
    assert health.details["shards"] == {"0": {"connected": True}, "1": {"connected": False}}


async def test_healthz_answers_503_with_the_detail_when_a_part_fails(served):
    session, state, _, _ = served
    state["health"] = assess({0: True}, store_status(failing=True, error="PostgreSQL: timeout"), worker_status())
    async with session.get("/healthz") as response:
        assert response.status == 503
        body = await response.json()
    assert body["status"] == FAILING and body["problems"] == ["store: PostgreSQL: timeout"]
    assert body["store"]["error"] == "PostgreSQL: timeout" and body["worker"]["queued"] == 2


class StatusOnly:
    """A store or worker that only tells its status: what ``WhymojiBot.health`` asks of them."""

    def __init__(self, status) -> None:
        self.current = status

    def status(self):
        return self.current


def test_the_bots_health_asks_its_store_and_worker_and_not_the_heartbeat():
    bot = WhymojiBot(load_config(None, environ={}))
    bot.is_ready = lambda: True
    bot._store, bot._worker = StatusOnly(store_status()), StatusOnly(worker_status())
    health = bot.health()
    assert health.healthy and health.details["worker"]["queued"] == 2
    assert "latency_ms" not in str(health.details)  # discord.py's heartbeat figure is not a latency
    bot._worker.current = worker_status(busy_for_s=WORKER_STALL_S * 2)
    assert bot.health().state == FAILING
    bot.store.current = store_status(failing=True, error="gone")
    assert bot.health().details["problems"][0] == "store: gone"


@pytest.mark.parametrize(
    ("store", "problem"),
    [
        (store_status(writes_failing=True, write_error="database is locked"), "store: writes fail: database is locked"),
        (store_status(oldest_pending_write_s=STORE_STALL_S + 2), "store: a write has waited 7 s"),
    ],
)
def test_writes_failing_while_reads_work_is_degraded_not_down(store, problem):
    """Reactions, /why and hints go on (a restart would not help), but settings cannot change."""
    health = assess({0: True}, store, worker_status())
    assert health.state == DEGRADED and health.healthy
    assert health.details["problems"] == [problem]


def test_reads_failing_outweigh_writes_failing():
    store = store_status(failing=True, error="down", writes_failing=True, write_error="down")
    health = assess({0: True}, store, worker_status())
    assert health.state == FAILING and health.details["problems"] == ["store: down"]


async def test_a_quiet_servers_healthz_follows_the_stores_own_checks():
    """No message arrives, so only the store's checks touch it: /healthz turns 503 when the
    database goes away, 200 when it is back, and names writes failing as degraded."""
    database = FakeDatabase()
    bot = WhymojiBot(load_config(None, environ={}))
    bot.is_ready = lambda: True
    bot._store, bot._worker = SettingsStore(database, DEFAULTS), StatusOnly(worker_status())
    server = HealthServer(Metrics(), bot.health, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session:

            async def healthz() -> tuple[int, dict]:
                await bot.store.check()  # what the schedule runs every few seconds
                async with session.get("/healthz") as response:
                    return response.status, await response.json()

            assert (await healthz())[0] == 200
            database.read_error = database.write_error = StoreError("PostgreSQL db:5432: ConnectionRefusedError")
            status, body = await healthz()
            assert (status, body["status"]) == (503, FAILING)
            database.read_error = database.write_error = None
            status, body = await healthz()
            assert (status, body["status"]) == (200, READY)
            database.write_error = StoreError("PostgreSQL db:5432: permission denied for table guild_settings")
            status, body = await healthz()
            assert (status, body["status"]) == (200, DEGRADED)
            assert body["problems"] == [
                "store: writes fail: PostgreSQL db:5432: permission denied for table guild_settings"
            ]
    finally:
        await server.close()
        await bot.store.close()


async def test_a_prepared_bot_checks_its_store_until_it_closes(tmp_path, small_model_dir):
    from tests.test_app import make_config

    bot = WhymojiBot(make_config(tmp_path, small_model_dir), extensions=())
    async with bot:
        await bot.prepare()
        checks = bot.store._checks
        assert checks is not None and checks.running
        await bot.close()
    assert not checks.running
