"""The Discord application: one process running a range of shards, wired from a ``Config``.

``WhymojiBot.prepare`` builds every piece the cogs reach through the bot that needs no Discord
(health server, store, engine, worker) and ``serve`` runs it before logging in, so a broken
setup fails in seconds with the words `whymoji check` uses; ``setup_hook`` then loads the cogs
and syncs their commands. ``close`` takes everything down in the order that lets in-flight work
finish. ``run_bot`` is what `whymoji run` calls, with signal handling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import weakref
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import discord
import torch
from discord import app_commands
from discord.ext import commands

from bot.config import Config
from bot.deepmoji.device import require_device
from bot.deepmoji.engine import Engine
from bot.deepmoji.threads import runtime_threads
from bot.errors import WhymojiError
from bot.interactions.replies import reply_privately
from bot.metrics import Metrics
from bot.rules.explanation_limits import ExplanationLimits
from bot.rules.kept import KeptExplanations
from bot.serving.discord_log import withhold_discord_payloads
from bot.serving.discord_proxy import use_endpoints
from bot.serving.health import STARTING, STOPPING, Health, HealthServer, assess
from bot.serving.loading import configure_torch, in_daemon_thread, locate_model_files
from bot.serving.predictions import MessagePredictions
from bot.serving.worker import InferenceWorker
from bot.store import GuildDefaults, SettingsStore, open_store
from bot.store.probe import probe_store

log = logging.getLogger(__name__)

Part = TypeVar("Part")

#: The features, one cog each, loaded in this order.
EXTENSIONS = ("cogs.reactions", "cogs.why", "cogs.moderation", "cogs.settings")

#: How long shutdown lets the work already received (messages, interactions, queued predictions,
#: `/why`s) finish, the model still running, before it stops what is left.
DRAIN_TIMEOUT_S = 10.0
#: Then: how long handlers whose work was stopped get to count it or say so, before they are
#: cancelled; and how long the cancelled ones get to end.
STOPPED_GRACE_S = 2.0
CANCEL_WAIT_S = 1.0

#: The answer to an interaction that arrives, or is cut short, while the bot shuts down.
RESTARTING = "I'm restarting; please try again in a minute."

#: A rate limit longer than this raises ``discord.RateLimited`` instead of being slept out by
#: discord.py (which would hold every request behind it); 30 s is the least discord.py accepts.
MAX_RATELIMIT_WAIT_S = 30.0

#: Names discord.py gives the tasks running event handlers and application commands.
_HANDLER_TASK_PREFIXES = ("discord.py: ", "CommandTree-invoker")
#: Handlers of the events that pausing the gateway dispatches itself: not work received.
_PAUSE_EVENTS = ("discord.py: on_shard_disconnect", "discord.py: on_disconnect")


class MissingToken(WhymojiError):
    """No bot token configured."""


class DiscordRefused(WhymojiError):
    """Discord (or the configured proxy) would not let the bot in."""


class StartAborted(Exception):
    """Shutdown was requested while the bot was still setting up."""


class NotPrepared(RuntimeError):
    """A part of the bot was asked for before ``prepare`` built it."""


class WhymojiTree(app_commands.CommandTree):
    """The command tree: while the bot shuts down, an interaction gets "restarting" at once
    instead of starting work; otherwise its task is noted, so that shutdown can answer it if it
    has to cancel it."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        bot = self.client
        if not isinstance(bot, WhymojiBot):
            return True
        if bot.stopping:
            bot.shutdown_report.turned_away += 1
            await _answer_restarting(interaction)
            return False
        task = asyncio.current_task()
        if task is not None:
            bot.interaction_tasks[task] = interaction
        return True


async def _answer_restarting(interaction: discord.Interaction) -> None:
    try:
        await reply_privately(interaction, RESTARTING)
    except (discord.HTTPException, discord.RateLimited) as error:
        log.warning("could not tell a user that whymoji is restarting: %s", error)


@dataclass
class ShutdownReport:
    """What shutdown found under way and what became of it: the one line it logs."""

    handlers: int = 0  #: event handlers and commands under way when the gateway was paused
    finished: int = 0  #: of those, ended by themselves
    cancelled: int = 0  #: of those, cancelled at the end (their messages counted as shed)
    turned_away: int = 0  #: interactions answered "restarting" without starting
    answered_restarting: int = 0  #: cancelled interactions answered "restarting"
    why_refused: int = 0  #: `/why`s still in line, answered "restarting"
    reactions_placed: float = 0  #: reactions placed during the drain
    shed: float = 0  #: messages whose reactions were shed for ``shutdown``
    hints_shed: float = 0  #: messages not checked for a hint, for ``shutdown``
    worker_done: float = 0  #: model requests finished during the drain
    worker_stopped: float = 0  #: model requests stopped unfinished
    seconds: float = 0.0

    def line(self) -> str:
        restarting = self.turned_away + self.why_refused + self.answered_restarting
        return (
            f"shut down: {self.handlers} handlers were under way ({self.finished} finished, {self.cancelled} cancelled); "
            f"{self.reactions_placed:.0f} reactions placed; {self.shed:.0f} messages shed (shutdown), "
            f"{self.hints_shed:.0f} not checked for hints; {restarting} interactions answered 'restarting' "
            f"({self.turned_away} arrived while stopping, {self.why_refused} /why in line, "
            f"{self.answered_restarting} cut short); model requests {self.worker_done:.0f} finished, "
            f"{self.worker_stopped:.0f} stopped; {self.seconds:.1f} s"
        )


def bot_intents() -> discord.Intents:
    """Only what the features read: guilds, guild messages and their text (privileged)."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = True
    return intents


class WhymojiBot(commands.AutoShardedBot):
    """The bot; cogs reach ``.config .engine .worker .store .predictions .metrics
    .explanation_limits .kept_explanations`` through it (the first four once ``prepare`` has
    built them).

    Every feature is an application command or a listener, so there are no prefix commands:
    the prefix is a mention of the bot (it can never clash with other bots' prefixes) and
    the default ``help`` command is removed, so no message ever triggers a command.
    """

    def __init__(
        self,
        config: Config,
        *,
        metrics: Metrics | None = None,
        extensions: Sequence[str] = EXTENSIONS,
        download: bool = True,
        **client_options: Any,  # discord.py's own options, passed through
    ) -> None:
        """``client_options`` go to discord.py (tests pass a short ``guild_ready_timeout``)."""
        # The bot has no voice: discord.py's warnings about missing voice libraries would mislead.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        # No message text and no interaction token in the log, at any level (unless asked).
        withhold_discord_payloads(payloads=config.logging.discord_payloads)
        if config.discord.shard_ids is not None:  # else discord.py runs every shard
            client_options["shard_ids"] = list(config.discord.shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=bot_intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            shard_count=config.discord.shard_count,
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S,
            tree_cls=WhymojiTree,
            # No feature looks at past messages (edits, deletions, reactions): keeping the last
            # 1,000 messages, text and all, would only cost memory (up to ~16 MB of worst inputs).
            max_messages=None,
            **client_options,
        )
        self.config = config
        self.metrics = metrics or Metrics()
        self.explanation_limits = ExplanationLimits(
            cooldown_s=config.why.cooldown_s,
            max_per_server=config.why.max_per_server,
            max_running=config.worker.max_explanations,  # so the worker never refuses one for overload
        )
        self.kept_explanations = KeptExplanations(config.why.kept_bytes, self.metrics)
        self._engine: Engine | None = None
        self._worker: InferenceWorker | None = None
        self._store: SettingsStore | None = None
        self._predictions: MessagePredictions | None = None
        self.health_server: HealthServer | None = None
        self.stopping = False
        self.drain_timeout_s = DRAIN_TIMEOUT_S
        self.shutdown_report = ShutdownReport()
        #: The task of each interaction being handled -> the interaction (``WhymojiTree``).
        self.interaction_tasks: weakref.WeakKeyDictionary[asyncio.Task[object], discord.Interaction] = (
            weakref.WeakKeyDictionary()
        )
        self._extensions = tuple(extensions)
        self._download = download
        self._setup_task: asyncio.Task[None] | None = None
        self._shutdown_task: asyncio.Task[None] | None = None

    # -- what prepare builds -------------------------------------------------------------

    @property
    def prepared(self) -> bool:
        """Whether ``prepare`` finished: engine, worker, store and predictions exist."""
        return self._predictions is not None

    @property
    def engine(self) -> Engine:
        return _built(self._engine, "engine")

    @property
    def worker(self) -> InferenceWorker:
        return _built(self._worker, "worker")

    @property
    def store(self) -> SettingsStore:
        return _built(self._store, "store")

    @property
    def predictions(self) -> MessagePredictions:
        """One reading and one model run per message, shared by reactions and moderation."""
        return _built(self._predictions, "predictions")

    # -- start -------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Build everything that needs no Discord; a shutdown request aborts it.

        ``serve`` calls it before logging in; ``setup_hook`` calls it too (it runs once), so a
        bot started without ``serve`` (tests, benchmarks) is built all the same.
        """
        if self.stopping:
            raise StartAborted("shutdown requested during start")
        if self._setup_task is None:
            self._setup_task = asyncio.create_task(self._set_up(), name="whymoji setup")
        try:
            await self._setup_task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            raise StartAborted("shutdown requested during start") from None

    async def setup_hook(self) -> None:
        """Logged in, before the gateway connects: the features and their commands."""
        await self.prepare()
        for extension in self._extensions:
            await self.load_extension(extension)
        log.info("features loaded: %s", ", ".join(self._extensions) or "none")

        if self.config.discord.sync_commands:
            synced = await self.tree.sync()
            log.info("application commands synced: %s", ", ".join(f"/{c.name}" for c in synced) or "none")

    async def _set_up(self) -> None:
        """Quick checks first (health address, device, store), then the slow model."""
        config = self.config
        if config.health.enabled:
            # First, so /healthz says "starting" (503) while the model loads.
            server = HealthServer(self.metrics, self.health, host=config.health.host, port=config.health.port)
            await server.start()
            self.health_server = server

        require_device(config.model.device)
        await probe_store(config.database.url)  # refuses what `whymoji check` refuses, in its words
        # open_store logs the (redacted) URL.
        self._store = await open_store(config.database.url, GuildDefaults.from_config(config))
        self._store.start_checks()  # /healthz tells the store's present on a quiet server too; close() stops them

        # A daemon thread: Ctrl-C during a first start's download stops the process at once.
        engine = self._engine = await in_daemon_thread(self._load_engine, "whymoji model loading")

        worker = InferenceWorker(
            engine,
            max_batch=config.worker.max_batch,
            max_wait_ms=config.worker.max_wait_ms,
            queue_size=config.worker.queue_size,
            max_explanations=config.worker.max_explanations,
            explanations_in_progress=config.worker.explanations_in_progress,
            metrics=self.metrics,
        )
        self._worker = worker
        await worker.start()
        # Messages in flight (read, or waiting for the model) are bounded like waiting predictions.
        self._predictions = MessagePredictions(worker, engine, max_in_flight=config.worker.queue_size)

    def _load_engine(self) -> Engine:
        """Runs in a thread: finding (maybe downloading) and loading the model takes seconds."""
        model = self.config.model
        configure_torch(model)
        files = locate_model_files(model, download=self._download)
        started = time.perf_counter()
        engine = Engine.load(files, device=model.device, max_tokens=model.max_tokens, precision=model.precision)
        log.info(
            "model loaded in %.1f s on %s (%s, %d threads for predictions, %d for /why): weights %s, vocabulary %s",
            time.perf_counter() - started,
            model.device,
            model.precision,
            runtime_threads(),
            torch.get_num_threads(),
            files.weights,
            files.vocabulary,
        )
        return engine

    # -- events ------------------------------------------------------------------------

    async def on_ready(self) -> None:
        log.info(
            "ready as %s (id %s): shards %s of %s, %d guilds",
            self.user,
            self.user.id if self.user else "?",
            sorted(self.shards),
            self.shard_count,
            len(self.guilds),
        )

    async def on_shard_connect(self, shard_id: int) -> None:
        log.info("shard %d connected", shard_id)

    async def on_shard_resumed(self, shard_id: int) -> None:
        log.info("shard %d resumed its session", shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        if not self.stopping:
            log.warning("shard %d disconnected; discord.py reconnects it", shard_id)

    def health(self) -> Health:
        """The ``/healthz`` answer: ready only while every shard of this process is connected,
        the settings store answers and the inference worker moves (``bot.serving.health.assess``)."""
        if self.stopping:
            return Health(STOPPING)
        if not self.is_ready():
            return Health(STARTING)
        shards = {shard_id: not shard.is_closed() for shard_id, shard in self.shards.items()}
        if self._store is None or self._worker is None:
            return Health(STARTING)
        return assess(shards, self._store.status(), self._worker.status(), guilds=len(self.guilds))

    # -- stop --------------------------------------------------------------------------

    async def __aexit__(self, *exc_info: object) -> None:
        # discord.py's version only waits for its own part of close() once one has started.
        await self.close()

    async def close(self) -> None:
        """Shut down in order; safe to call again (later calls wait for the first)."""
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.create_task(self._close_in_order(), name="whymoji shutdown")
        await asyncio.shield(self._shutdown_task)

    async def _close_in_order(self) -> None:
        """Stop taking work, finish (or count) what was received, then close everything."""
        self.stopping = True  # /healthz answers 503; new interactions are answered "restarting"
        started = time.monotonic()
        log.info("shutting down: taking no new work, finishing what was received")
        if self._setup_task is not None and not self._setup_task.done():
            self._setup_task.cancel()
            await asyncio.wait([self._setup_task])
        before = self._counts()
        # First the gateway: no new message or interaction arrives from here on. REST stays
        # open, so work under way can still place reactions and answer.
        await _logged("pausing the gateway", self._pause_gateway())
        await _logged("finishing in-flight work", self._drain())
        for extension in tuple(self.extensions):
            await _logged(f"unloading {extension}", self.unload_extension(extension))
        if self._predictions is not None:
            self._predictions.close()
        await _logged("closing the gateway", super().close())
        if self._store is not None:
            await _logged("closing the settings store", self._store.close())
        if self.health_server is not None:
            await _logged("closing the health server", self.health_server.close())
        report = self.shutdown_report
        after = self._counts()
        report.reactions_placed, report.shed, report.hints_shed, report.worker_done, report.worker_stopped = (
            now - then for now, then in zip(after, before, strict=True)
        )
        report.seconds = time.monotonic() - started
        log.info("%s", report.line())

    async def _pause_gateway(self) -> None:
        """Close every shard's websocket (the HTTP session stays open)."""
        for shard in self.shards.values():
            await shard.disconnect()

    def _counts(self) -> tuple[float, float, float, float, float]:
        """Reactions placed, messages shed for shutdown (reactions, hints), model requests done
        and stopped, so far."""
        metrics = self.metrics
        registry = metrics.registry

        def sample(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels) or 0.0

        shed = sample("whymoji_reactions_shed_total", reason="shutdown")
        hints_shed = sample("whymoji_moderation_hints_shed_total", reason="shutdown")
        done = sum(sample("whymoji_worker_requests_total", kind=k, outcome="done") for k in ("predict", "explain"))
        stopped = sum(
            sample("whymoji_worker_requests_total", kind=k, outcome="shutdown") for k in ("predict", "explain")
        )
        return sample("whymoji_reactions_placed_total"), shed, hints_shed, done, stopped

    def _running_handlers(self) -> list[asyncio.Task[object]]:
        current = asyncio.current_task()
        return [
            task
            for task in asyncio.all_tasks()
            if task is not current
            and not task.done()
            and task.get_name().startswith(_HANDLER_TASK_PREFIXES)
            and task.get_name() not in _PAUSE_EVENTS
        ]

    async def _drain(self) -> None:
        """Let the handlers under way finish while the model still runs, until the deadline;
        then stop the model's queue and the `/why` line (their handlers count or answer that),
        and cancel what is still running, answering its interactions "restarting"."""
        report = self.shutdown_report
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.drain_timeout_s
        handlers = self._running_handlers()
        report.handlers = len(handlers)
        if handlers:
            await asyncio.wait(handlers, timeout=max(0.0, deadline - loop.time()))
        report.why_refused = self.explanation_limits.close(RESTARTING)
        if self._worker is not None:
            await self._worker.close(timeout=max(0.0, deadline - loop.time()))  # fails what it could not finish
        pending = self._running_handlers()
        if pending:
            _, pending_set = await asyncio.wait(pending, timeout=STOPPED_GRACE_S)
            pending = list(pending_set)
        if pending:
            log.warning("%d event handlers still running at shutdown; cancelling them", len(pending))
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
            cut_short = [self.interaction_tasks[task] for task in pending if task in self.interaction_tasks]
            if cut_short:
                await asyncio.wait(
                    [asyncio.create_task(_answer_restarting(interaction)) for interaction in cut_short],
                    timeout=CANCEL_WAIT_S,
                )
            report.answered_restarting = len(cut_short)
            report.cancelled = len(pending)  # discord.py's event tasks swallow their cancellation
        report.finished = report.handlers - report.cancelled


def _built(part: Part | None, name: str) -> Part:
    if part is None:
        raise NotPrepared(f"the bot's {name} is built by prepare(), which has not finished")
    return part


async def _logged(step: str, work: Awaitable[object]) -> None:
    """Await one shutdown step; a failure is logged and the next steps still run."""
    try:
        await work
    except Exception:
        log.exception("shutdown: %s failed", step)


async def run_bot(config: Config, *, download: bool = True) -> None:
    """What `whymoji run` does: point discord.py at the configured endpoints, check the token with
    Discord, and serve a bot built from ``config``."""
    token = config.discord.token
    if not token:
        raise MissingToken(
            "no Discord bot token: set the DISCORD_TOKEN environment variable or discord.token_file in the config file"
        )
    use_endpoints(config.discord.api_base_url, config.discord.gateway_url)
    await check_token(token)  # before the model: a refused token costs seconds, not an 85 MB download
    await serve(WhymojiBot(config, download=download), token)


async def check_token(token: str) -> None:
    """Ask Discord (the configured REST base) whether it takes ``token``, as logging in does first."""
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        await http.static_login(token)
    except discord.LoginFailure as error:
        raise DiscordRefused(
            f"Discord refused the bot token ({error}): check DISCORD_TOKEN or discord.token_file"
        ) from None
    except aiohttp.ClientConnectionError as error:
        raise DiscordRefused(f"cannot reach Discord: {error}") from None
    except discord.HTTPException as error:
        raise DiscordRefused(f"cannot check the bot token with Discord: {error}") from None
    finally:
        await http.close()


async def serve(bot: WhymojiBot, token: str) -> None:
    """Run ``bot`` until Discord closes it or a signal arrives: the first SIGTERM/SIGINT shuts
    down in order, a second one exits at once. Discord's refusals become one-line errors."""
    loop = asyncio.get_running_loop()
    shutdowns: list[asyncio.Task[None]] = []  # keeps the shutdown task referenced while it runs

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if shutdowns:
            log.warning("second %s: exiting now, without finishing in-flight work", name)
            os._exit(128 + signum)
        log.info("%s received: finishing in-flight work (send it again to exit at once)", name)
        shutdowns.append(loop.create_task(bot.close()))

    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        async with bot:
            await bot.prepare()  # before logging in: a broken setup fails without touching Discord
            await bot.start(token)
    except StartAborted:
        log.info("stopped before connecting")
    except discord.LoginFailure as error:
        raise DiscordRefused(
            f"Discord refused the bot token ({error}): check DISCORD_TOKEN or discord.token_file"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise DiscordRefused(
            "Discord refused the Message Content intent: enable it for the bot in the Developer Portal "
            "(Bot > Privileged Gateway Intents > Message Content Intent)"
        ) from None
    except aiohttp.ClientConnectionError as error:
        raise DiscordRefused(f"cannot reach Discord: {error}") from None
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
