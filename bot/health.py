"""The process's health and metrics endpoints, for orchestrators and Prometheus.

``/healthz`` answers 200 only while the bot can do its job (gateway connected), so a container
runtime restarts a process that is stuck starting or lost Discord, and a load balancer stops
counting on one that is shutting down (503). ``/metrics`` is the Prometheus text of the
process's own registry. The server knows nothing about Discord: it asks a probe function.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import Metrics

log = logging.getLogger(__name__)

#: The states a process goes through; only ``READY`` is healthy.
STARTING, READY, STOPPING = "starting", "ready", "stopping"


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` reports: a state and details worth showing (shards, latency)."""

    state: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.state == READY


class HealthServer:
    """aiohttp server for ``/healthz`` and ``/metrics``; ``await start()``, ``await close()``."""

    def __init__(
        self, metrics: Metrics, probe: Callable[[], Health], *, host: str = "127.0.0.1", port: int = 8080
    ) -> None:
        self._metrics = metrics
        self._probe = probe
        self._host = host
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        """Bind and serve; ``.port`` is the bound port afterwards (useful with port 0)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_text)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("health server listening on http://%s:%d (/healthz, /metrics)", self._host, self.port)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            log.info("health server stopped")

    async def _healthz(self, request: web.Request) -> web.Response:
        health = self._probe()
        body = {"status": health.state, **health.details}
        return web.json_response(body, status=200 if health.healthy else 503)

    async def _metrics_text(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self._metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
