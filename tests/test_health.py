"""The health server: /healthz follows the probe, /metrics serves the process's registry."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.health import READY, STARTING, STOPPING, Health, HealthServer, HealthServerError, probe_url
from bot.health import main as health_main
from bot.metrics import Metrics
from tests.conftest import free_port


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
