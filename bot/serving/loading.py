"""What every command that loads the model settles first, and what the bot settles before it connects.

Model files from ``config.model`` (downloaded on a container's first start, when allowed), the
bot's process-wide torch settings, and loading in a daemon thread. Kept free of Discord so
`check` and the one-shot commands can use it without connecting anywhere.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from bot.config import ModelConfig
from bot.deepmoji.files import ModelFiles, resolve_model_files
from bot.deepmoji.threads import use_threads

log = logging.getLogger(__name__)

Result = TypeVar("Result")


#: glibc's ``mallopt`` parameter for the mmap threshold (``M_MMAP_THRESHOLD`` in malloc.h).
_M_MMAP_THRESHOLD = -3
#: Buffers of this size and larger get their own mapping, handed back to the system when freed.
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


def configure_torch(model: ModelConfig) -> None:
    """Process-wide settings for the long-running bot (not for one-shot commands).

    Batches of every size pass through the model; its tensors of several MB, freed after each
    batch, would otherwise stay in glibc's heap (whose mmap threshold grows to the largest freed
    block) and fragment it: a bot measured then peaked at 576-601 MB, against 540-551 MB with
    a fixed 4 MB threshold (benchmarks/memory.py; benchmarks/README.md, Memory per process).
    """
    use_threads(model.threads)
    _fix_mmap_threshold()


def _fix_mmap_threshold() -> None:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        log.info("no mallopt in this C library: the allocator's heap is left as it is")
        return
    if not mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES):
        log.warning("mallopt refused the %d-byte mmap threshold: memory may grow more", MMAP_THRESHOLD_BYTES)


def locate_model_files(model: ModelConfig, *, download: bool = True) -> ModelFiles:
    """The model files ``config.model`` names: local paths, else the Hub cache, else a download.

    Every command that loads the model finds its files here, so `predict` and `run` read the
    same settings the same way. A download is the container's first start: the data volume is
    empty, so the files are fetched (huggingface_hub shows progress) into the cache before the
    bot connects, after one short request has shown that the Hub can be reached
    (``HubUnreachable`` at once if not). With ``download=False`` or ``model.offline`` a file
    missing from the cache is ``NotDownloaded`` (its ``offline`` says which).
    """
    return resolve_model_files(
        model.weights,
        model.vocabulary,
        repo_id=model.repo_id,
        revision=model.revision,
        cache_dir=model.cache_dir,
        offline=model.offline,
        download=download,
    )


async def in_daemon_thread(work: Callable[[], Result], name: str) -> Result:
    """``work()`` in a daemon thread, awaited.

    Unlike ``asyncio.to_thread``, whose threads the interpreter waits for at exit, a thread still
    busy when the bot is told to stop (a download from a Hub that stopped answering) does not
    keep the process alive: Ctrl-C stops `whymoji run` at once, whatever the thread is doing.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Result] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not future.done():  # else the waiting side was cancelled
            outcome()

    def run() -> None:
        outcome: Callable[[], None]
        try:
            outcome = partial(future.set_result, work())
        except BaseException as error:  # handed to the awaiting task
            outcome = partial(future.set_exception, error)
        try:
            loop.call_soon_threadsafe(settle, outcome)
        except RuntimeError:  # the loop closed meanwhile: nobody is waiting any more
            pass

    threading.Thread(target=run, name=name, daemon=True).start()
    return await future
