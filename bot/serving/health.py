"""The process's health and metrics endpoints, for orchestrators and Prometheus.

``/healthz`` answers 200 only while the bot can do its job: every shard connected, the settings
store answering reads, the inference worker moving. Otherwise 503, so a container runtime
restarts a process that is stuck starting, lost Discord or its database, or whose model hangs,
and a load balancer stops counting on one that is shutting down. A store whose reads work but
whose writes fail (or wait on a lock) is ``degraded``: still 200, since reactions, ``/why`` and
hints go on and a restart would not help, but named in ``problems``. The store is checked on a
schedule of its own (``bot.store.status.StoreChecks``), so this holds on a quiet server too. The
body says why (``problems``) and keeps the detail (shards, store, worker). ``/metrics`` is the Prometheus text of the process's
own registry. The server knows nothing about Discord: it asks a probe function, and
``assess`` turns plain facts into the answer.

``python -m bot.serving.health`` is the other side, the container's ``HEALTHCHECK``: it reads the same
config as the bot, asks ``/healthz`` and exits 0 only on a 200.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.config import CONFIG_ENV, load_config
from bot.errors import WhymojiError
from bot.metrics import Metrics

if TYPE_CHECKING:  # not imported at run time: the container probe stays light
    from bot.serving.worker import WorkerStatus
    from bot.store.status import StoreStatus

log = logging.getLogger(__name__)

#: The states a process goes through; only ``READY`` is healthy.
STARTING, READY, RECONNECTING, STOPPING = "starting", "ready", "reconnecting", "stopping"
#: Connected, but a dependency fails (the store) or stalls (the store, the model).
FAILING = "failing"
#: Serving (200), but settings cannot be changed: the store's writes fail or stall.
DEGRADED = "degraded"

#: A store access unanswered this long means the database hangs (its own timeouts are 10 s).
STORE_STALL_S = 5.0
#: A model job running, or a request waiting, this long means the worker is stuck: a job is a
#: batch or one slice of an explanation (well under a second), and the queue is bounded.
WORKER_STALL_S = 30.0


@dataclass(frozen=True)
class Health:
    """What ``/healthz`` reports: a state and details worth showing (shards, store, worker)."""

    state: str
    details: Mapping[str, object] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200: ready, or degraded (serving, settings frozen)."""
        return self.state in (READY, DEGRADED)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def store_problem(store: StoreStatus) -> str | None:
    """Why the settings store cannot serve the bot (its reads fail or hang), or None."""
    return _access_problem("read", store.oldest_pending_s, store.failing, store.error)


def store_degradation(store: StoreStatus) -> str | None:
    """Why settings cannot be changed although they can be read (writes fail or hang), or None."""
    return _access_problem(
        "write", store.oldest_pending_write_s, store.writes_failing, f"writes fail: {store.write_error}"
    )


def _access_problem(access: str, pending_s: float | None, failing: bool, error: str | None) -> str | None:
    if pending_s is not None and pending_s > STORE_STALL_S:
        return f"store: a {access} has waited {pending_s:.0f} s"
    return f"store: {error}" if failing else None


def worker_problem(worker: WorkerStatus) -> str | None:
    """Why the inference worker cannot serve the bot, or None."""
    if not worker.running:
        return "worker: not running"
    if worker.busy_for_s is not None and worker.busy_for_s > WORKER_STALL_S:
        return f"worker: the current job has run for {worker.busy_for_s:.0f} s"
    if worker.oldest_wait_s is not None and worker.oldest_wait_s > WORKER_STALL_S:
        return f"worker: a request has waited {worker.oldest_wait_s:.0f} s"
    return None


def assess(shards: Mapping[int, bool], store: StoreStatus, worker: WorkerStatus, **details: object) -> Health:
    """The ``/healthz`` answer of a started bot from what each part says of itself.

    ``shards`` maps shard id -> connected; ``store`` and ``worker`` are the status snapshots of
    the settings store and the inference worker. Discord's heartbeat latency is not reported:
    discord.py measures it on the event loop, so a busy loop shows the heartbeat interval (41 s)
    rather than the network's latency.
    """
    store_failing = store_problem(store)
    problems = [problem for problem in (store_failing, worker_problem(worker)) if problem]
    degradation = store_degradation(store) if store_failing is None else None
    if not all(shards.values()):
        state = RECONNECTING
    elif problems:
        state = FAILING
    elif degradation:
        state = DEGRADED
    else:
        state = READY
    if degradation:
        problems.append(degradation)
    body = {
        "shards": {str(shard): {"connected": connected} for shard, connected in sorted(shards.items())},
        "store": {
            "failing": store.failing,
            "error": store.error,
            "last_ok_s_ago": _rounded(store.last_ok_s_ago),
            "oldest_pending_s": _rounded(store.oldest_pending_s),
            "writes_failing": store.writes_failing,
            "write_error": store.write_error,
            "oldest_pending_write_s": _rounded(store.oldest_pending_write_s),
        },
        "worker": {
            "running": worker.running,
            "queued": worker.queued,
            "oldest_wait_s": _rounded(worker.oldest_wait_s),
            "busy_for_s": _rounded(worker.busy_for_s),
            "idle_for_s": _rounded(worker.idle_for_s),
        },
        **details,
    }
    if problems:
        body["problems"] = problems
    return Health(state, body)


class HealthServerError(WhymojiError):
    """The health server cannot listen where the config says (port taken, unknown host)."""


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
        """Bind and serve; ``.port`` is the bound port afterwards (useful with port 0).

        An address that cannot be used is a ``HealthServerError``, so `whymoji run` says which
        setting to change instead of showing a traceback.
        """
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_text)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._requested_port)
            await site.start()
        except OSError as error:
            await runner.cleanup()
            raise HealthServerError(
                f"health server: cannot listen on {self._host}:{self._requested_port} "
                f"({error.strerror or error}); set another health.host / health.port, "
                "or health.enabled = false"
            ) from None
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


def probe_url(host: str, port: int) -> str:
    """The ``/healthz`` URL to ask from inside the bot's own host or container."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}/healthz" if ":" in host else f"http://{host}:{port}/healthz"


def main(environ: Mapping[str, str] = os.environ, timeout: float = 4.0) -> int:
    """Exit status for a HEALTHCHECK: 0 when ``/healthz`` answers 200, else 1 (with why)."""
    try:
        config = load_config(environ.get(CONFIG_ENV) or None, environ)
    except WhymojiError as error:
        print(f"config: {error}")
        return 1
    if not config.health.enabled:
        print("health server disabled (health.enabled = false)")
        return 1
    url = probe_url(config.health.host, config.health.port)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            print(response.read().decode("utf-8", "replace"))
            return 0
    except urllib.error.HTTPError as error:
        print(f"{url}: HTTP {error.code} {error.read().decode('utf-8', 'replace')}")
    except (urllib.error.URLError, OSError) as error:
        print(f"{url}: {getattr(error, 'reason', error)}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
