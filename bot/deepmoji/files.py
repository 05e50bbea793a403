"""Where the pretrained model files come from: local paths, or the Hugging Face Hub cache.

The weights (``pytorch_model.bin``, ~85 MB) and the vocabulary (~1 MB) are too big to ship, so
they are fetched once from the Hub into its cache and reused from there. Local paths win, so a
deployment can pin files it already has; a path that is named but missing is an error, never a
silent download. A file already in the cache is used without asking the Hub (``whymoji
download`` asks it); a file that must be downloaded is fetched only after one short request has
shown the Hub can be reached, so a Hub that cannot be (no DNS, connection refused) fails within
seconds, in one line naming both files, the Hub's address and what to do. Whatever goes wrong,
the error says how to get the files: there is no fallback to random weights.

This module reads no ``WHYMOJI_*`` variable: the app's settings (``model.*``, ``bot/config.py``)
arrive as arguments. Only huggingface_hub's own ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` are read.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import constants as hub_constants
from huggingface_hub import hf_hub_download, hf_hub_url
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
from huggingface_hub.utils import get_session, validate_repo_id
from huggingface_hub.utils import tqdm as hub_tqdm

from bot.errors import WhymojiError

logger = logging.getLogger(__name__)

#: The Hugging Face Hub repository the model files come from unless told otherwise.
DEFAULT_REPO_ID = "Pendrokar/TorchMoji"
WEIGHTS_FILENAME = "pytorch_model.bin"
VOCABULARY_FILENAME = "vocabulary.json"
#: What each file costs to download (the published files: 89.6 MB and 1.06 MB).
DOWNLOAD_SIZES = {WEIGHTS_FILENAME: "~85 MB", VOCABULARY_FILENAME: "~1 MB"}
#: huggingface_hub's own switch (it refuses every request when it is set); honoured here too,
#: so what ``check`` says matches what the Hub client will do.
HUB_OFFLINE_ENV = "HF_HUB_OFFLINE"
ENDPOINT_ENV = "HF_ENDPOINT"
#: The values huggingface_hub reads as true (``constants.ENV_VARS_TRUE_VALUES``).
_HUB_TRUE = {"1", "ON", "YES", "TRUE"}

#: What to do when the files cannot be had: one sentence, the same in every message.
ADVICE = (
    f"set model.weights and model.vocabulary (--weights, --vocabulary) to local copies of {WEIGHTS_FILENAME} and "
    f"{VOCABULARY_FILENAME}, or run `whymoji download` where the Hub can be reached (into the same model.cache_dir)"
)

#: What the Hub client raises when a file cannot be fetched or found in the cache.
_HUB_FAILURES = (HfHubHTTPError, EntryNotFoundError, httpx2.HTTPError, OSError, ValueError)

#: The one request that asks whether the Hub can be reached before a download: a connection
#: not made within this long is given up, as is an answer that does not come.
PROBE_TIMEOUT_S = 5.0
#: A download that receives nothing for this long is reported (the Hub may be stalled) ...
STALL_NOTICE_S = 10.0
#: ... and abandoned after this long: huggingface_hub's own retries of a Hub that accepts
#: connections but never answers would take minutes.
STALL_LIMIT_S = 30.0
#: huggingface_hub reads a download in pieces of this size and reports progress per piece; its
#: default, 10 MB, would make a link slower than ~330 KB/s look stalled. 1 MB pieces: ~35 KB/s.
hub_constants.DOWNLOAD_CHUNK_SIZE = 1024 * 1024


class ModelFilesError(WhymojiError):
    """A model file is missing or could not be fetched; the message says how to get it."""


class NotDownloaded(ModelFilesError):
    """Model files are not in the Hub cache, and downloading was not allowed this time.

    ``missing`` names the files (``DOWNLOAD_SIZES`` says what they would cost), ``offline`` says
    whether offline mode forbade the download (else the caller only asked not to download now,
    as ``whymoji check`` does), ``source`` is where they would come from (``probe_hub``).
    """

    def __init__(self, message: str, *, missing: tuple[str, ...], offline: bool, source: HubSource) -> None:
        super().__init__(message)
        self.missing = missing
        self.offline = offline
        self.source = source


class HubUnreachable(ModelFilesError):
    """Files must be downloaded, and the Hub cannot be reached: retrying would not help."""


@dataclass(frozen=True)
class ModelFiles:
    """Local paths of the two files a DeepMoji engine needs."""

    weights: Path
    vocabulary: Path


@dataclass(frozen=True)
class HubSource:
    """Which Hub repository to fetch from, and how."""

    repo_id: str
    revision: str | None
    cache_dir: str | None
    endpoint: str | None
    progress: bool

    @property
    def address(self) -> str:
        """The Hub's base URL (``HF_ENDPOINT``, else huggingface.co)."""
        return self.endpoint or hub_constants.ENDPOINT.rstrip("/")

    @property
    def cache(self) -> str:
        """The cache folder, for messages."""
        return self.cache_dir or hub_constants.HF_HUB_CACHE

    def url(self, filename: str) -> str:
        return hf_hub_url(self.repo_id, filename, revision=self.revision, endpoint=self.endpoint)


@dataclass(frozen=True)
class HubProbe:
    """What one short request to the Hub found: ``problem`` is None when it answered.

    ``fatal`` problems (no DNS, connection refused, no connection at all) are ones retrying
    cannot fix; an answer that does not come in time may be a slow Hub, and is left to the
    download's own watch for data (``STALL_LIMIT_S``).
    """

    problem: str | None = None
    fatal: bool = False


def hub_offline(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids requests, read as huggingface_hub reads it."""
    environ = os.environ if environ is None else environ
    return environ.get(HUB_OFFLINE_ENV, "").strip().upper() in _HUB_TRUE


def _offline_reason(offline: bool, environ: Mapping[str, str]) -> str | None:
    if offline:
        return "offline mode is on (model.offline)"
    if hub_offline(environ):
        return f"offline mode is on ({HUB_OFFLINE_ENV})"
    return None


def _and(names: Iterable[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def download_sizes(filenames: Iterable[str]) -> str:
    """``pytorch_model.bin (~85 MB) and vocabulary.json (~1 MB)``: what fetching them costs."""
    return _and(f"{name} ({DOWNLOAD_SIZES.get(name, 'size unknown')})" for name in filenames)


def resolve_model_files(
    weights: str | os.PathLike[str] | None = None,
    vocabulary: str | os.PathLike[str] | None = None,
    *,
    repo_id: str = DEFAULT_REPO_ID,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool = False,
    download: bool = True,
    progress: bool = True,
    endpoint: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ModelFiles:
    """Find both model files: the local path given, else the Hub cache, else a download.

    The Hub is asked only for files not given locally and not already in its cache. Downloads
    happen unless ``offline`` (or ``HF_HUB_OFFLINE``) or ``download=False``: then a file not in
    the cache is ``NotDownloaded``. Before downloading, one request with a short timeout checks
    that the Hub can be reached (``HubUnreachable`` if not). ``endpoint`` points at a Hub mirror
    (default: ``HF_ENDPOINT``); ``environ`` replaces ``os.environ`` (tests). Paths come back
    absolute. Raises ``ModelFilesError`` with instructions when a file is unavailable.
    """
    environ = os.environ if environ is None else environ
    # Check both local choices before fetching anything: a typo must not cost a download.
    found = {
        WEIGHTS_FILENAME: _local_path(weights, "model.weights"),
        VOCABULARY_FILENAME: _local_path(vocabulary, "model.vocabulary"),
    }
    source = _hub_source(repo_id, revision, cache_dir, endpoint, progress, environ)
    for name in [name for name, path in found.items() if path is None]:
        found[name] = _cached(name, source)
    missing = tuple(name for name, path in found.items() if path is None)
    if missing:
        reason = _offline_reason(offline, environ)
        if reason is not None or not download:
            raise NotDownloaded(
                _not_downloaded_message(missing, source, reason or "downloads are off"),
                missing=missing,
                offline=reason is not None,
                source=source,
            )
        require_hub(source, missing)
        logger.info(
            "model files not found locally: downloading %s from the Hugging Face Hub (%s at %s) into %s",
            download_sizes(missing),
            source.repo_id,
            source.address,
            source.cache,
        )
        for name in missing:
            found[name] = _fetch(name, source)
    weights_path, vocabulary_path = found[WEIGHTS_FILENAME], found[VOCABULARY_FILENAME]
    assert weights_path is not None and vocabulary_path is not None  # found, cached or fetched
    return ModelFiles(weights=weights_path, vocabulary=vocabulary_path)


def download_model_files(
    *,
    repo_id: str = DEFAULT_REPO_ID,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool = False,
    force: bool = False,
    progress: bool = True,
    endpoint: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ModelFiles:
    """Fetch both files from the Hub into the cache (``whymoji download``), ignoring local paths.

    The Hub is always asked (after the same short check that it can be reached), so a newer
    revision replaces a stale cache; ``force`` downloads again even when the cached copy is current.
    """
    environ = os.environ if environ is None else environ
    reason = _offline_reason(offline, environ)
    if reason is not None:
        setting = HUB_OFFLINE_ENV if "HF_HUB" in reason else "model.offline (WHYMOJI_MODEL_OFFLINE)"
        raise ModelFilesError(f"cannot download the model files while {reason}: turn off {setting} for this command")
    source = _hub_source(repo_id, revision, cache_dir, endpoint, progress, environ)
    files = (WEIGHTS_FILENAME, VOCABULARY_FILENAME)
    require_hub(source, files)
    return ModelFiles(
        weights=_fetch(WEIGHTS_FILENAME, source, force=force),
        vocabulary=_fetch(VOCABULARY_FILENAME, source, force=force),
    )


def probe_hub(source: HubSource) -> HubProbe:
    """Ask the Hub once, with a short timeout, whether it answers at all (any HTTP answer will do).

    Through huggingface_hub's own HTTP client, so proxies (``HTTPS_PROXY``) apply as they will
    for the download.
    """
    try:
        get_session().head(f"{source.address}/", timeout=PROBE_TIMEOUT_S, follow_redirects=False)
    except httpx2.ConnectTimeout:
        return HubProbe(f"no connection within {PROBE_TIMEOUT_S:g} s", fatal=True)
    except httpx2.TimeoutException:
        return HubProbe(f"connected, but no answer within {PROBE_TIMEOUT_S:g} s")
    except (httpx2.HTTPError, OSError) as error:
        return HubProbe(_connection_problem(error), fatal=True)
    return HubProbe()


def _connection_problem(error: BaseException) -> str:
    """A failed connection in a few words: the host unknown, the connection refused, or the error."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve its host name: {cause.strerror or cause}"
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    return _summary(error)


def require_hub(source: HubSource, missing: Iterable[str]) -> None:
    """``HubUnreachable`` when the Hub cannot be reached to fetch ``missing``; else nothing."""
    probe = probe_hub(source)
    if probe.problem is None:
        return
    if not probe.fatal:
        logger.warning("the Hugging Face Hub at %s: %s; trying the download anyway", source.address, probe.problem)
        return
    raise hub_unreachable(source, missing, probe.problem)


def hub_unreachable(source: HubSource, missing: Iterable[str], problem: str) -> HubUnreachable:
    """The one-line error for a Hub that cannot be reached: both files, the address, what to do."""
    return HubUnreachable(
        f"cannot reach the Hugging Face Hub at {source.address} ({problem}) to download "
        f"{download_sizes(missing)} of {source.repo_id}: {ADVICE}"
    )


def _hub_source(
    repo_id: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    endpoint: str | None,
    progress: bool,
    environ: Mapping[str, str],
) -> HubSource:
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise ModelFilesError(
            f"{repo_id!r} is not a Hugging Face Hub repository id (owner/name, e.g. {DEFAULT_REPO_ID})"
        ) from None
    # Read at call time: huggingface_hub reads HF_ENDPOINT once, when it is imported.
    endpoint = endpoint or environ.get(ENDPOINT_ENV) or None
    return HubSource(
        repo_id=repo_id,
        revision=revision,
        cache_dir=None if cache_dir is None else str(Path(cache_dir).expanduser().absolute()),
        endpoint=endpoint.rstrip("/") if endpoint else None,
        progress=progress,
    )


def _local_path(explicit: str | os.PathLike[str] | None, setting: str) -> Path | None:
    """The path given, absolute and checked to be a file; None: use the Hub."""
    if explicit is None:
        return None
    path = Path(explicit).expanduser().absolute()
    if not path.is_file():
        raise ModelFilesError(f"{setting}: {path} does not exist or is not a file")
    return path


def _cached(filename: str, source: HubSource) -> Path | None:
    """The file from the Hub cache, without asking the Hub; None when it is not there."""
    try:
        path = hf_hub_download(
            source.repo_id,
            filename,
            revision=source.revision,
            cache_dir=source.cache_dir,
            endpoint=source.endpoint,
            local_files_only=True,
        )
    except LocalEntryNotFoundError:
        return None
    except _HUB_FAILURES as error:
        raise ModelFilesError(
            f"cannot read {filename} from the Hugging Face cache {source.cache}: {_summary(error)}"
        ) from error
    logger.debug("model file %s at %s", filename, path)
    return Path(path).absolute()


def _fetch(filename: str, source: HubSource, *, force: bool = False) -> Path:
    """Download the file into the Hub cache (or find it current there) and return its path."""
    transfer = _Transfer(filename, show=source.progress)
    fetch = functools.partial(
        hf_hub_download,
        source.repo_id,
        filename,
        revision=source.revision,
        cache_dir=source.cache_dir,
        endpoint=source.endpoint,
        force_download=force,
        tqdm_class=transfer.progress_class(),
    )
    try:
        path = transfer.run(fetch)
    except _HUB_FAILURES as error:
        raise ModelFilesError(_failed_message(filename, source, error)) from error
    logger.debug("model file %s at %s", filename, path)
    return Path(path).absolute()


class _Transfer:
    """One file's download, run in a daemon thread and watched for data arriving.

    The caller's thread waits, so Ctrl-C reaches it at once, and the process can exit without
    waiting for a download that hangs: the thread is a daemon. A download that receives nothing
    for ``STALL_NOTICE_S`` is reported, and after ``STALL_LIMIT_S`` abandoned with a
    ``TimeoutError``; the thread then stops drawing progress and is left to end with the process.
    """

    def __init__(self, filename: str, *, show: bool) -> None:
        self.filename = filename
        self.show = show
        self.last_data = time.monotonic()
        self.abandoned = False
        self._done = threading.Event()
        self._outcome: tuple[str | None, BaseException | None] = (None, None)

    def progress_class(self) -> type[hub_tqdm]:
        """The Hub's progress bar, shown only if asked, noting every piece of data that arrives."""
        transfer = self

        class Progress(hub_tqdm):
            def __init__(self, *args: object, **kwargs: object) -> None:
                kwargs["disable"] = kwargs.get("disable") or not transfer.show
                super().__init__(*args, **kwargs)
                transfer.last_data = time.monotonic()

            def update(self, n: float | None = 1) -> bool | None:
                transfer.last_data = time.monotonic()
                if transfer.abandoned:
                    self.disable = True
                return super().update(n)

        return Progress

    def run(self, fetch: Callable[[], str]) -> str:
        threading.Thread(target=self._work, args=(fetch,), name=f"download {self.filename}", daemon=True).start()
        try:
            return self._wait()
        except BaseException:
            self.abandoned = True
            raise

    def _work(self, fetch: Callable[[], str]) -> None:
        try:
            self._outcome = (fetch(), None)
        except BaseException as error:  # handed to the waiting thread
            self._outcome = (None, error)
        self._done.set()

    def _wait(self) -> str:
        noticed = False
        while True:
            quiet = time.monotonic() - self.last_data
            if quiet >= STALL_LIMIT_S:
                raise TimeoutError(f"no data for {STALL_LIMIT_S:g} s")
            if quiet >= STALL_NOTICE_S and not noticed:
                logger.warning(
                    "no data from the Hugging Face Hub for %.0f s while getting %s; giving up after %g s",
                    quiet,
                    self.filename,
                    STALL_LIMIT_S,
                )
            noticed = quiet >= STALL_NOTICE_S
            if self._done.wait((STALL_LIMIT_S if noticed else STALL_NOTICE_S) - quiet):
                path, error = self._outcome
                if error is not None:
                    raise error
                assert path is not None  # _work sets a path or an error
                return path


def _links(source: HubSource, filenames: Iterable[str]) -> str:
    return ", ".join(source.url(name) for name in filenames)


def _not_downloaded_message(missing: tuple[str, ...], source: HubSource, reason: str) -> str:
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"{_and(missing)} {verb} not in the Hugging Face cache ({source.cache}) and {reason}: {ADVICE} "
        f"(direct links: {_links(source, missing)})"
    )


def _failed_message(filename: str, source: HubSource, error: BaseException) -> str:
    """One line: what failed, why, and how to get the files."""
    return (
        f"could not get {filename} from the Hugging Face Hub at {source.address} ({_summary(error)}): {ADVICE} "
        f"(direct link: {source.url(filename)})"
    )


def _summary(error: BaseException, limit: int = 300) -> str:
    """The Hub's multi-line error text folded into one short line."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
