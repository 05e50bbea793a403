"""The health server: /healthz follows the probe, /metrics serves the process's registry."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.health import READY, STARTING, STOPPING, Health, HealthServer
from bot.metrics import Metrics


@pytest.fixture
async def served():
    """A running server on a free port whose probe answer the test can change."""
    state = {"health": Health(STARTING)}
    metrics = Metrics()
    server = HealthServer(metrics, lambda: state["health"], host="127.0.0.1", port=0)
    await server.start()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as session:
        yield session, state, metrics
    await server.close()


async def test_healthz_is_503_while_starting_and_200_when_ready(served):
    session, state, _ = served
    async with session.get("/healthz") as response:
        assert response.status == 503
        assert (await response.json())["status"] == STARTING

    state["health"] = Health(READY, {"shards": {"0": {"connected": True}}, "latency_ms": 41.5})
    async with session.get("/healthz") as response:
        assert response.status == 200
        body = await response.json()
    assert body == {"status": READY, "shards": {"0": {"connected": True}}, "latency_ms": 41.5}


async def test_healthz_is_503_while_stopping(served):
    session, state, _ = served
    state["health"] = Health(STOPPING)
    async with session.get("/healthz") as response:
        assert response.status == 503
        assert (await response.json())["status"] == STOPPING


async def test_metrics_serves_the_processes_own_registry(served):
    session, _, metrics = served
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


async def test_a_busy_port_is_a_clear_os_error():
    first = HealthServer(Metrics(), lambda: Health(READY), host="127.0.0.1", port=0)
    await first.start()
    try:
        second = HealthServer(Metrics(), lambda: Health(READY), host="127.0.0.1", port=first.port)
        with pytest.raises(OSError):
            await second.start()
    finally:
        await first.close()
