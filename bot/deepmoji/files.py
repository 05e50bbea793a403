"""Where the pretrained model files come from: local paths, or the Hugging Face Hub cache.

The weights (``pytorch_model.bin``, ~85 MB) and the vocabulary are too big to ship, so they
are fetched once from the Hub into its cache and reused from there. Explicit paths and the
``WHYMOJI_WEIGHTS`` / ``WHYMOJI_VOCABULARY`` variables win, so a deployment can pin files it
already has; a path that is named but missing is an error, never a silent download. Whatever
goes wrong, the error says how to get the files: there is no fallback to random weights.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import constants as hub_constants
from huggingface_hub import hf_hub_download, hf_hub_url
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
from huggingface_hub.utils import tqdm as hub_tqdm
from huggingface_hub.utils import validate_repo_id

from bot.errors import WhymojiError

logger = logging.getLogger(__name__)

#: The Hugging Face Hub repository the model files come from unless told otherwise.
DEFAULT_REPO_ID = "Pendrokar/TorchMoji"
WEIGHTS_FILENAME = "pytorch_model.bin"
VOCABULARY_FILENAME = "vocabulary.json"

WEIGHTS_ENV = "WHYMOJI_WEIGHTS"
VOCABULARY_ENV = "WHYMOJI_VOCABULARY"
CACHE_DIR_ENV = "WHYMOJI_CACHE_DIR"
OFFLINE_ENVS = ("WHYMOJI_OFFLINE", "HF_HUB_OFFLINE")
ENDPOINT_ENV = "HF_ENDPOINT"

#: What the Hub client raises when a file cannot be fetched or found in the cache.
_HUB_FAILURES = (HfHubHTTPError, EntryNotFoundError, httpx2.HTTPError, OSError, ValueError)

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
    """A model file is not in the Hub cache, and downloading was not allowed this time."""


@dataclass(frozen=True)
class ModelFiles:
    """Local paths of the two files a DeepMoji engine needs."""

    weights: Path
    vocabulary: Path


@dataclass(frozen=True)
class _HubSource:
    """Which Hub repository to fetch from, and how."""

    repo_id: str
    revision: str | None
    cache_dir: str | None
    endpoint: str | None
    progress: bool


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def offline_from_env(environ: Mapping[str, str]) -> bool:
    """Whether ``WHYMOJI_OFFLINE`` or ``HF_HUB_OFFLINE`` forbid downloads."""
    return any(_is_true(environ.get(name)) for name in OFFLINE_ENVS)


def resolve_model_files(
    weights: str | os.PathLike[str] | None = None,
    vocabulary: str | os.PathLike[str] | None = None,
    *,
    repo_id: str = DEFAULT_REPO_ID,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    offline: bool | None = None,
    download: bool = True,
    progress: bool = True,
    endpoint: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ModelFiles:
    """Find both model files: explicit path, then environment variable, then the Hub cache.

    The Hub is asked only for files not given locally; it downloads into its cache unless
    ``offline`` (default: ``WHYMOJI_OFFLINE`` / ``HF_HUB_OFFLINE``) or ``download=False``, in
    which case only the cache is used. ``endpoint`` points at a Hub mirror (default:
    ``HF_ENDPOINT``); ``environ`` replaces ``os.environ`` (tests). Raises ``ModelFilesError``
    with instructions when a file is unavailable.
    """
    environ = os.environ if environ is None else environ
    if offline is None:
        offline = offline_from_env(environ)
    # Check both local choices before fetching anything: a typo must not cost a download.
    local_weights = _local_path(weights, WEIGHTS_ENV, WEIGHTS_FILENAME, environ)
    local_vocabulary = _local_path(vocabulary, VOCABULARY_ENV, VOCABULARY_FILENAME, environ)
    source = _hub_source(repo_id, revision, cache_dir, endpoint, progress, environ)
    no_download = "offline mode is on" if offline else (None if download else "downloads are off")
    return ModelFiles(
        weights=local_weights or _fetch(WEIGHTS_FILENAME, source, no_download=no_download),
        vocabulary=local_vocabulary or _fetch(VOCABULARY_FILENAME, source, no_download=no_download),
    )


def download_model_files(
    *,
    repo_id: str = DEFAULT_REPO_ID,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    progress: bool = True,
    endpoint: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ModelFiles:
    """Fetch both files from the Hub into the cache (``whymoji download``), ignoring local paths.

    The Hub is always asked, so a newer revision replaces a stale cache; ``force`` downloads
    again even when the cached copy is current.
    """
    environ = os.environ if environ is None else environ
    if offline_from_env(environ):
        raise ModelFilesError(
            "cannot download the model files while offline mode is on: "
            f"unset {' and '.join(OFFLINE_ENVS)} and try again"
        )
    source = _hub_source(repo_id, revision, cache_dir, endpoint, progress, environ)
    return ModelFiles(
        weights=_fetch(WEIGHTS_FILENAME, source, force=force),
        vocabulary=_fetch(VOCABULARY_FILENAME, source, force=force),
    )


def _hub_source(
    repo_id: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    endpoint: str | None,
    progress: bool,
    environ: Mapping[str, str],
) -> _HubSource:
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise ModelFilesError(
            f"{repo_id!r} is not a Hugging Face Hub repository id (owner/name, e.g. {DEFAULT_REPO_ID})"
        ) from None
    cache = cache_dir if cache_dir is not None else environ.get(CACHE_DIR_ENV) or None
    # Read at call time: huggingface_hub reads HF_ENDPOINT once, when it is imported.
    endpoint = endpoint or environ.get(ENDPOINT_ENV) or None
    return _HubSource(
        repo_id=repo_id,
        revision=revision,
        cache_dir=None if cache is None else str(Path(cache).expanduser()),
        endpoint=endpoint.rstrip("/") if endpoint else None,
        progress=progress,
    )


def _local_path(
    explicit: str | os.PathLike[str] | None,
    env_name: str,
    filename: str,
    environ: Mapping[str, str],
) -> Path | None:
    """The explicit path, else the environment variable's, checked to exist; None: use the Hub."""
    if explicit is not None:
        return _existing(Path(explicit), f"the {filename} path given")
    from_env = environ.get(env_name)
    if from_env:
        return _existing(Path(from_env), env_name)
    return None


def _existing(path: Path, origin: str) -> Path:
    path = path.expanduser()
    if not path.is_file():
        raise ModelFilesError(f"{origin} does not exist or is not a file: {path}")
    return path


def _fetch(filename: str, source: _HubSource, *, no_download: str | None = None, force: bool = False) -> Path:
    """The file from the Hub cache, downloading it unless ``no_download`` says why not."""
    transfer = _Transfer(filename, show=source.progress)
    fetch = functools.partial(
        hf_hub_download,
        source.repo_id,
        filename,
        revision=source.revision,
        cache_dir=source.cache_dir,
        endpoint=source.endpoint,
        local_files_only=no_download is not None,
        force_download=force,
        tqdm_class=transfer.progress_class(),
    )
    try:
        path = fetch() if no_download is not None else transfer.run(fetch)
    except _HUB_FAILURES as error:
        message = _unavailable_message(filename, source, no_download, error)
        if no_download and isinstance(error, LocalEntryNotFoundError):
            raise NotDownloaded(message) from error
        raise ModelFilesError(message) from error
    logger.debug("model file %s at %s", filename, path)
    return Path(path)


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


def _unavailable_message(filename: str, source: _HubSource, no_download: str | None, error: BaseException) -> str:
    """One line: what failed, why, and the three ways to get the file."""
    url = hf_hub_url(source.repo_id, filename, revision=source.revision, endpoint=source.endpoint)
    if no_download and isinstance(error, LocalEntryNotFoundError):
        problem = f"{filename} is not in the Hugging Face cache and {no_download}"
    else:
        problem = f"could not get {filename} from the Hugging Face Hub ({_summary(error)})"
    return (
        f"{problem}. Get the model files with `whymoji download` (online), or download {url} "
        f"yourself and set {WEIGHTS_ENV} / {VOCABULARY_ENV} to the local files."
    )


def _summary(error: BaseException, limit: int = 300) -> str:
    """The Hub's multi-line error text folded into one short line."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
