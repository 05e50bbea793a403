"""Model file resolution against a fake Hub on 127.0.0.1: download, cache, offline, failures."""

from __future__ import annotations

import socket

import pytest

from bot.deepmoji import files as files_module
from bot.deepmoji.files import (
    VOCABULARY_FILENAME,
    WEIGHTS_FILENAME,
    HubSource,
    HubUnreachable,
    ModelFiles,
    ModelFilesError,
    NotDownloaded,
    download_model_files,
    probe_hub,
    resolve_model_files,
)
from tests.conftest import free_port
from tests.fake_hub import FakeHub


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "hub-cache"


def resolve(hub: FakeHub, cache, **options) -> ModelFiles:
    options.setdefault("environ", {})
    return resolve_model_files(repo_id=hub.repo_id, cache_dir=cache, endpoint=hub.endpoint, progress=False, **options)


def assert_same_files(files: ModelFiles, folder) -> None:
    assert files.weights.read_bytes() == (folder / WEIGHTS_FILENAME).read_bytes()
    assert files.vocabulary.read_bytes() == (folder / VOCABULARY_FILENAME).read_bytes()


def test_first_use_downloads_and_second_use_hits_the_cache_with_the_server_gone(hub, cache, small_model_dir):
    first = resolve(hub, cache)
    assert_same_files(first, small_model_dir)
    assert first.weights.is_relative_to(cache) and first.vocabulary.is_relative_to(cache)
    assert hub.count("GET", WEIGHTS_FILENAME) == 0  # LFS file: fetched from the redirect target
    assert any(method == "GET" and path.startswith("/cdn/") for method, path, _ in hub.requests)

    endpoint = hub.endpoint
    hub.stop()
    second = resolve_model_files(repo_id=hub.repo_id, cache_dir=cache, endpoint=endpoint, progress=False, environ={})
    assert second == first
    assert_same_files(second, small_model_dir)


def test_offline_with_cached_files_needs_no_server(hub, cache, small_model_dir):
    resolve(hub, cache)
    seen = len(hub.requests)
    files = resolve(hub, cache, offline=True)
    assert_same_files(files, small_model_dir)
    assert len(hub.requests) == seen


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"offline": True}, "offline mode is on (model.offline)"),
        ({"download": False}, "downloads are off"),
        ({"environ": {"HF_HUB_OFFLINE": "true"}}, "offline mode is on (HF_HUB_OFFLINE)"),
    ],
    ids=["offline", "download-false", "HF_HUB_OFFLINE"],
)
def test_offline_with_an_empty_cache_says_how_to_get_the_files(hub, cache, options, reason):
    with pytest.raises(NotDownloaded) as error:
        resolve(hub, cache, **options)
    message = str(error.value)
    assert f"{WEIGHTS_FILENAME} and {VOCABULARY_FILENAME} are not in the Hugging Face cache ({cache})" in message
    assert reason in message and "whymoji download" in message
    assert "model.weights" in message and "model.vocabulary" in message
    assert f"/{hub.repo_id}/resolve/main/{WEIGHTS_FILENAME}" in message
    assert "\n" not in message
    assert error.value.missing == (WEIGHTS_FILENAME, VOCABULARY_FILENAME)
    assert error.value.offline is ("download" not in options)
    assert hub.requests == []


def test_no_whymoji_variable_is_read_here(hub, cache, small_model_dir):
    """The app's settings arrive as arguments (bot/config.py reads the environment, once)."""
    environ = {
        "WHYMOJI_WEIGHTS": str(small_model_dir / WEIGHTS_FILENAME),
        "WHYMOJI_VOCABULARY": str(small_model_dir / VOCABULARY_FILENAME),
        "WHYMOJI_OFFLINE": "1",
        "WHYMOJI_MODEL_OFFLINE": "1",
    }
    files = resolve(hub, cache, environ=environ)
    assert files.weights.is_relative_to(cache) and files.vocabulary.is_relative_to(cache)
    assert not [
        name
        for name in vars(files_module)
        if isinstance(getattr(files_module, name), str) and getattr(files_module, name).startswith("WHYMOJI_")
    ]


def test_a_cached_file_is_used_without_asking_the_hub(hub, cache, small_model_dir):
    first = resolve(hub, cache)
    endpoint = hub.endpoint
    hub.stop()  # downloads stay allowed: the cache alone must answer
    again = resolve_model_files(repo_id=hub.repo_id, cache_dir=cache, endpoint=endpoint, progress=False, environ={})
    assert again == first


def test_only_the_missing_file_is_named_and_fetched(hub, cache, small_model_dir):
    weights = small_model_dir / WEIGHTS_FILENAME
    with pytest.raises(NotDownloaded) as error:
        resolve(hub, cache, weights=weights, download=False)
    assert error.value.missing == (VOCABULARY_FILENAME,)
    assert str(error.value).startswith(f"{VOCABULARY_FILENAME} is not in the Hugging Face cache")
    files = resolve(hub, cache, weights=weights)
    assert files.weights == weights and files.vocabulary.is_relative_to(cache)
    assert hub.count("HEAD", WEIGHTS_FILENAME) == 0


def test_a_missing_file_on_the_hub_is_a_clear_error(hub, cache):
    del hub.files[VOCABULARY_FILENAME]
    with pytest.raises(ModelFilesError) as error:
        resolve(hub, cache)
    message = str(error.value)
    assert VOCABULARY_FILENAME in message and "404" in message
    assert "whymoji download" in message and "\n" not in message


def test_an_unknown_repository_is_a_clear_error(hub, cache):
    with pytest.raises(ModelFilesError, match="could not get pytorch_model.bin"):
        resolve_model_files(
            repo_id="nobody/nothing",
            cache_dir=cache,
            endpoint=hub.endpoint,
            progress=False,
            environ={},
        )


def test_a_server_error_while_downloading_is_a_clear_error(hub, cache):
    hub.fail_get[WEIGHTS_FILENAME] = 500
    with pytest.raises(ModelFilesError) as error:
        resolve(hub, cache)
    assert "500" in str(error.value) and WEIGHTS_FILENAME in str(error.value)
    assert not list(cache.rglob("*.incomplete")), "no partial file is left behind"


def test_a_server_error_on_the_metadata_request_is_a_clear_error(hub, cache, monkeypatch):
    import huggingface_hub.utils._http as hub_http

    # The Hub client retries 5xx with exponential back-off (seconds); skip the waiting.
    monkeypatch.setattr(hub_http.time, "sleep", lambda seconds: None)
    hub.fail_head[WEIGHTS_FILENAME] = 500
    with pytest.raises(ModelFilesError) as error:
        resolve(hub, cache)
    assert WEIGHTS_FILENAME in str(error.value) and "whymoji download" in str(error.value)
    assert hub.count("HEAD", WEIGHTS_FILENAME) >= 2  # retried before giving up


def test_an_interrupted_download_is_retried_cleanly(hub, cache, small_model_dir):
    hub.cut_first_get.add(WEIGHTS_FILENAME)
    files = resolve(hub, cache)
    assert_same_files(files, small_model_dir)
    cdn_gets = [ranged for method, path, ranged in hub.requests if method == "GET" and path.startswith("/cdn/")]
    # The client resumes from the last whole piece it wrote (1 MB pieces, files.py: here, from 0).
    assert len(cdn_gets) == 2 and cdn_gets[0] is None
    assert cdn_gets[1] in (None, *(f"bytes={n}-" for n in range(1, files.weights.stat().st_size)))
    assert not list(cache.rglob("*.incomplete"))


def test_explicit_paths_win_and_ask_no_server(hub, cache, small_model_dir):
    files = resolve(
        hub,
        cache,
        weights=small_model_dir / WEIGHTS_FILENAME,
        vocabulary=str(small_model_dir / VOCABULARY_FILENAME),
    )
    assert files == ModelFiles(small_model_dir / WEIGHTS_FILENAME, small_model_dir / VOCABULARY_FILENAME)
    assert hub.requests == []


def test_relative_paths_come_back_absolute(hub, cache, small_model_dir, monkeypatch):
    monkeypatch.chdir(small_model_dir)
    files = resolve(hub, cache, weights=WEIGHTS_FILENAME, vocabulary=VOCABULARY_FILENAME)
    assert files == ModelFiles(small_model_dir / WEIGHTS_FILENAME, small_model_dir / VOCABULARY_FILENAME)


def test_only_the_file_not_given_locally_comes_from_the_hub(hub, cache, small_model_dir):
    files = resolve(hub, cache, vocabulary=small_model_dir / VOCABULARY_FILENAME)
    assert files.vocabulary == small_model_dir / VOCABULARY_FILENAME
    assert files.weights.is_relative_to(cache)
    assert hub.count("HEAD", VOCABULARY_FILENAME) == 0


@pytest.mark.parametrize("setting", ["weights", "vocabulary"])
def test_a_missing_local_path_is_an_error_naming_the_setting_and_nothing_is_downloaded(hub, cache, tmp_path, setting):
    missing = tmp_path / "nope" / "file"
    with pytest.raises(ModelFilesError) as error:
        resolve(hub, cache, **{setting: missing})
    assert str(error.value) == f"model.{setting}: {missing} does not exist or is not a file"
    assert hub.requests == []


def test_download_fetches_into_the_cache_and_force_fetches_again(hub, cache, small_model_dir):
    options = dict(repo_id=hub.repo_id, cache_dir=cache, endpoint=hub.endpoint, progress=False)
    files = download_model_files(environ={}, **options)
    assert_same_files(files, small_model_dir)
    downloads = hub.count("GET", VOCABULARY_FILENAME)
    assert download_model_files(environ={}, **options) == files
    assert hub.count("GET", VOCABULARY_FILENAME) == downloads  # current cache: no new body
    download_model_files(environ={}, force=True, **options)
    assert hub.count("GET", VOCABULARY_FILENAME) == downloads + 1


@pytest.mark.parametrize(
    ("options", "setting"),
    [({"offline": True}, "model.offline"), ({"environ": {"HF_HUB_OFFLINE": "1"}}, "HF_HUB_OFFLINE")],
)
def test_download_refuses_in_offline_mode(hub, cache, options, setting):
    options.setdefault("environ", {})
    with pytest.raises(ModelFilesError, match="offline mode is on") as error:
        download_model_files(repo_id=hub.repo_id, cache_dir=cache, endpoint=hub.endpoint, **options)
    assert f"turn off {setting}" in str(error.value)
    assert hub.requests == []


@pytest.fixture
def no_backoff(monkeypatch):
    """Records the Hub client's back-off sleeps (its retries) instead of sleeping them."""
    import huggingface_hub.utils._http as hub_http

    sleeps: list[float] = []
    monkeypatch.setattr(hub_http.time, "sleep", sleeps.append)
    return sleeps


def assert_one_line_naming_both_files_and_the_address(message: str, address: str, problem: str) -> None:
    assert message.startswith(f"cannot reach the Hugging Face Hub at {address} ({problem}) to download ")
    assert f"{WEIGHTS_FILENAME} (~85 MB) and {VOCABULARY_FILENAME} (~1 MB)" in message
    assert "model.weights" in message and "model.vocabulary" in message
    assert "`whymoji download` where the Hub can be reached" in message
    assert "\n" not in message


@pytest.mark.parametrize("call", ["resolve", "download"])
def test_a_refused_connection_fails_at_once_in_one_line(cache, no_backoff, caplog, call):
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    options = dict(repo_id="test/deepmoji", cache_dir=cache, endpoint=endpoint, progress=False, environ={})
    with caplog.at_level("WARNING"), pytest.raises(HubUnreachable) as error:
        (resolve_model_files if call == "resolve" else download_model_files)(**options)
    assert_one_line_naming_both_files_and_the_address(str(error.value), endpoint, "connection refused")
    assert no_backoff == [], "no retry: retrying cannot fix a refused connection"
    assert not caplog.records, "no retry warnings, no 'no data' line"


def test_an_unknown_host_fails_at_once_in_one_line(cache, no_backoff, monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "hub.example.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    endpoint = "http://hub.example.invalid"
    with pytest.raises(HubUnreachable) as error:
        resolve_model_files(repo_id="test/deepmoji", cache_dir=cache, endpoint=endpoint, progress=False, environ={})
    assert_one_line_naming_both_files_and_the_address(
        str(error.value), endpoint, "cannot resolve its host name: Name or service not known"
    )
    assert no_backoff == []


def test_the_probe_is_one_request_and_a_hub_that_answers_anything_is_reachable(hub):
    source = HubSource(hub.repo_id, None, None, hub.endpoint, progress=False)
    assert probe_hub(source).problem is None
    assert hub.requests == [("HEAD", "/", None)]  # the fake answers 404 there: an answer all the same


def test_a_silent_hub_is_a_problem_of_the_probe_but_not_a_fatal_one(hub, monkeypatch):
    monkeypatch.setattr("bot.deepmoji.files.PROBE_TIMEOUT_S", 0.3)
    hub.silent = True
    probe = probe_hub(HubSource(hub.repo_id, None, None, hub.endpoint, progress=False))
    assert probe.problem == "connected, but no answer within 0.3 s" and not probe.fatal


@pytest.fixture
def quick_stalls(monkeypatch):
    """A stall is noticed after 0.2 s and abandoned after 1 s, instead of 10 s and 30 s."""
    monkeypatch.setattr("bot.deepmoji.files.STALL_NOTICE_S", 0.2)
    monkeypatch.setattr("bot.deepmoji.files.STALL_LIMIT_S", 1.0)


@pytest.mark.parametrize("stall", ["stall_head", "stall_body"])
def test_a_stalled_hub_is_reported_then_abandoned_with_the_clear_message(hub, cache, quick_stalls, caplog, stall):
    getattr(hub, stall).add(WEIGHTS_FILENAME)
    with caplog.at_level("WARNING", logger="bot.deepmoji.files"):
        with pytest.raises(ModelFilesError) as error:
            resolve(hub, cache)
    message = str(error.value)
    assert f"could not get {WEIGHTS_FILENAME} from the Hugging Face Hub at {hub.endpoint} (no data for 1 s)" in message
    assert "whymoji download" in message and "\n" not in message
    [notice] = [
        record.getMessage() for record in caplog.records if "no data from the Hugging Face Hub" in record.getMessage()
    ]
    assert WEIGHTS_FILENAME in notice and "giving up after 1 s" in notice


def test_a_slow_download_that_keeps_receiving_data_is_not_abandoned(
    hub, cache, quick_stalls, small_model_dir, monkeypatch
):
    monkeypatch.setattr("huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE", 1024)
    hub.trickle_s = 0.05  # ~40 pieces of 1 KB: about 2 s in all, longer than the 1 s stall limit
    assert_same_files(resolve(hub, cache), small_model_dir)


@pytest.mark.parametrize("repo_id", ["not a repo", "x/y/z"])
def test_a_malformed_repo_id_is_a_clear_error_before_any_request(hub, cache, repo_id):
    for call in (resolve_model_files, download_model_files):
        with pytest.raises(ModelFilesError, match="is not a Hugging Face Hub repository id"):
            call(repo_id=repo_id, cache_dir=cache, endpoint=hub.endpoint, environ={})
    assert hub.requests == []
