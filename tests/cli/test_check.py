"""`whymoji check`: validates config and model files, prints the plan, never connects or downloads."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch

from bot.cli import main
from tests.conftest import free_port
from tests.fake_hub import FakeHub


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No token, WHYMOJI_* or Hub settings leak in from the machine running the tests; the
    health server's default port (8080) may be taken on a test machine, so any port will do."""
    for name in list(os.environ):
        if name.startswith(("WHYMOJI_", "HF_")) or name == "DISCORD_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("WHYMOJI_HEALTH_PORT", "0")
    monkeypatch.chdir(tmp_path)


def problem_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if "PROBLEM" in line]


def write_config(folder, text: str):
    path = folder / "whymoji.toml"
    path.write_text(text)
    return path


def model_section(model_dir) -> str:
    return f'[model]\nweights = "{model_dir / "pytorch_model.bin"}"\nvocabulary = "{model_dir / "vocabulary.json"}"\n'


def test_a_good_deployment_prints_the_plan_and_exits_0(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token-value")
    port = free_port()
    config = write_config(
        tmp_path,
        model_section(small_model_dir)
        + '[discord]\nshard_count = 4\nshard_ids = [0, 1]\napi_base_url = "http://127.0.0.1:9/api/v10"\n'
        + f'[database]\nurl = "sqlite:///{tmp_path}/data/settings.sqlite3"\n'
        + f'[health]\nhost = "127.0.0.1"\nport = {port}\n',
    )
    monkeypatch.delenv("WHYMOJI_HEALTH_PORT")
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"config: {config}" in out
    assert "token: set (from DISCORD_TOKEN)" in out
    assert "shards: 0, 1 of 4 in this process" in out
    assert "REST http://127.0.0.1:9/api/v10" in out
    assert f"store: sqlite:///{tmp_path}/data/settings.sqlite3: does not exist yet" in out
    assert f"weights {small_model_dir / 'pytorch_model.bin'}" in out
    words = len(json.loads((small_model_dir / "vocabulary.json").read_text()))
    assert f"({words} words, 64 classes)" in out
    assert f"health: http://127.0.0.1:{port}/healthz and /metrics (free to listen on)" in out
    assert "device: cpu" in out
    assert out.rstrip().endswith("all good")
    assert "secret-token-value" not in out
    assert not (tmp_path / "data").exists(), "check creates no database"


def test_the_config_path_can_come_from_the_environment(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    config = write_config(tmp_path, model_section(small_model_dir) + "[health]\nenabled = false\n")
    monkeypatch.setenv("WHYMOJI_CONFIG", str(config))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert f"config: {config}" in out and "health: disabled" in out


def test_every_problem_is_reported_and_the_exit_code_is_1(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("WHYMOJI_HEALTH_PORT")
    missing = tmp_path / "nowhere.bin"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(
            tmp_path,
            f'[model]\nweights = "{missing}"\n[database]\nurl = "sqlite:////proc/whymoji/settings.sqlite3"\n'
            f"[health]\nport = {port}\n",
        )
        assert main(["check", "--config", str(config), "--offline"]) == 1
    out = capsys.readouterr().out
    problems = problem_lines(out)
    assert [line.split(":")[0].strip() for line in problems] == ["token", "store", "model", "health"]
    assert "DISCORD_TOKEN" in problems[0]
    assert "cannot open SQLite database /proc/whymoji/settings.sqlite3" in problems[1]
    assert str(missing) in problems[2]
    assert f"cannot listen on 127.0.0.1:{port}" in problems[3] and "health.port" in problems[3]
    assert "4 problems found" in out


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:////tmp", "cannot open SQLite database /tmp: it is a folder"),
        ("sqlite:////proc/x/db", "cannot open SQLite database /proc/x/db"),
        (
            "postgresql://whymoji:hunter2@127.0.0.1:{port}/whymoji",
            "cannot connect to PostgreSQL at postgresql://whymoji:***@",
        ),
    ],
)
def test_a_store_the_bot_cannot_use_is_a_problem(monkeypatch, capsys, url, message):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setenv("WHYMOJI_DATABASE_URL", url.format(port=free_port()))
    monkeypatch.setenv("WHYMOJI_MODEL_OFFLINE", "true")
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    store = next(line for line in out.splitlines() if line.startswith("  store:"))
    assert store.startswith("  store: PROBLEM: ") and message in store
    assert "hunter2" not in out


def test_every_config_problem_is_listed_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WHYMOJI_REACTOINS_TOP_K", "5")
    monkeypatch.setenv("WHYMOJI_MODEL_REPO_ID", "not a repo")
    config = write_config(tmp_path, "[reactions]\ntop_k = 0\n")
    assert main(["check", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    problems = problem_lines(captured.out)
    assert len(problems) == 3 and all(line.startswith("  config: PROBLEM: ") for line in problems)
    assert any("reactions.top_k" in line for line in problems)
    assert any(
        "WHYMOJI_REACTOINS_TOP_K: unknown setting (did you mean WHYMOJI_REACTIONS_TOP_K?)" in line for line in problems
    )
    assert any("WHYMOJI_MODEL_REPO_ID: must be a Hub repository id" in line for line in problems)
    assert captured.out.rstrip().endswith("3 problems found") and captured.err == ""


def test_a_corrupt_checkpoint_is_a_problem_naming_the_file(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    broken = tmp_path / "pytorch_model.bin"
    broken.write_bytes((small_model_dir / "pytorch_model.bin").read_bytes()[:500])
    config = write_config(
        tmp_path, f'[model]\nweights = "{broken}"\nvocabulary = "{small_model_dir / "vocabulary.json"}"\n'
    )
    assert main(["check", "--config", str(config)]) == 1
    line = next(line for line in capsys.readouterr().out.splitlines() if "PROBLEM" in line)
    assert line.startswith("  model: PROBLEM") and str(broken) in line


@pytest.fixture
def hub_endpoint(monkeypatch):
    """Point the Hub client (which reads HF_ENDPOINT when imported) and whymoji at ``endpoint``."""

    def point(endpoint: str) -> None:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", endpoint)

    return point


def model_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("  model:"))


@pytest.mark.parametrize(
    ("args", "settings", "problem"),
    [
        ((), {}, None),
        (("--offline",), {}, "offline mode is on (model.offline)"),
        ((), {"WHYMOJI_MODEL_OFFLINE": "1"}, "offline mode is on (model.offline)"),
        ((), {"HF_HUB_OFFLINE": "1"}, "offline mode is on (HF_HUB_OFFLINE)"),
    ],
)
def test_a_model_not_downloaded_yet_is_a_note_unless_offline(
    tmp_path, small_model_dir, monkeypatch, capsys, hub_endpoint, args, settings, problem
):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    hub = FakeHub.from_folder(small_model_dir).start()
    endpoint = hub.endpoint
    try:
        hub_endpoint(endpoint)
        config = write_config(tmp_path, f'[model]\nrepo_id = "{hub.repo_id}"\ncache_dir = "{tmp_path / "cache"}"\n')
        code = main(["check", "--config", str(config), *args])
    finally:
        hub.stop()
    out = capsys.readouterr().out
    model = model_line(out)
    if problem is None:
        assert code == 0 and out.rstrip().endswith("all good (1 note)")
        assert model == (
            "  model: note: not downloaded yet: `whymoji run` will first download pytorch_model.bin (~85 MB) and "
            f"vocabulary.json (~1 MB) from the Hugging Face Hub repository {hub.repo_id} at {endpoint} "
            f"(it answers) into {tmp_path / 'cache'}"
        )
        assert hub.requests == [("HEAD", "/", None)]  # asked once, downloaded nothing
    else:
        assert code == 1, "offline with nothing there: `run` cannot start, so it is a problem"
        assert model.startswith("  model: PROBLEM:") and problem in model and "whymoji download" in model
        assert "pytorch_model.bin and vocabulary.json are not in the Hugging Face cache" in model
        assert hub.requests == []


def test_files_only_partly_there_cost_what_is_missing(
    tmp_path, small_model_dir, monkeypatch, capsys, hub, hub_endpoint
):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    hub_endpoint(hub.endpoint)
    config = write_config(
        tmp_path,
        f'[model]\nrepo_id = "{hub.repo_id}"\ncache_dir = "{tmp_path / "cache"}"\n'
        f'weights = "{small_model_dir / "pytorch_model.bin"}"\n',
    )
    assert main(["check", "--config", str(config)]) == 0
    model = model_line(capsys.readouterr().out)
    assert "will first download vocabulary.json (~1 MB) from" in model and "85 MB" not in model


@pytest.mark.parametrize("silent", [False, True], ids=["refused", "silent"])
def test_a_hub_that_cannot_be_reached_is_a_problem_when_files_must_be_downloaded(
    tmp_path, monkeypatch, capsys, hub_endpoint, small_model_dir, silent
):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setattr("bot.deepmoji.files.PROBE_TIMEOUT_S", 0.5)
    hub = FakeHub.from_folder(small_model_dir, silent=silent).start()
    endpoint = hub.endpoint
    if not silent:
        hub.stop()  # nothing listens there any more: refused
    try:
        hub_endpoint(endpoint)
        assert main(["check"]) == 1
    finally:
        hub.stop()
    out = capsys.readouterr().out
    problem = "connected, but no answer within 0.5 s" if silent else "connection refused"
    assert model_line(out) == (
        f"  model: PROBLEM: cannot reach the Hugging Face Hub at {endpoint} ({problem}) to download "
        "pytorch_model.bin (~85 MB) and vocabulary.json (~1 MB) of Pendrokar/TorchMoji: set model.weights and "
        "model.vocabulary (--weights, --vocabulary) to local copies of pytorch_model.bin and vocabulary.json, or run "
        "`whymoji download` where the Hub can be reached (into the same model.cache_dir)"
    )
    assert out.rstrip().endswith("1 problem found")


def test_every_relative_path_is_shown_resolved(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.delenv("WHYMOJI_HEALTH_PORT")
    (tmp_path / "models").mkdir()
    for name in ("pytorch_model.bin", "vocabulary.json"):
        (tmp_path / "models" / name).write_bytes((small_model_dir / name).read_bytes())
    (tmp_path / "token").write_text("t\n")
    write_config(
        tmp_path,
        '[model]\nweights = "models/pytorch_model.bin"\nvocabulary = "models/vocabulary.json"\n'
        '[discord]\ntoken_file = "token"\n[database]\nurl = "sqlite:///data/whymoji.sqlite3"\n'
        f"[health]\nport = {free_port()}\n",
    )
    assert main(["check", "--config", "whymoji.toml"]) == 0
    out = capsys.readouterr().out
    assert f"config: {tmp_path / 'whymoji.toml'}\n" in out
    assert f"token: set (from {tmp_path / 'token'})" in out
    assert (
        "store: sqlite:///data/whymoji.sqlite3: does not exist yet; the bot creates it on start "
        f"(relative to the folder whymoji runs in: {tmp_path / 'data' / 'whymoji.sqlite3'})"
    ) in out
    assert (
        f"weights {tmp_path / 'models' / 'pytorch_model.bin'}, vocabulary {tmp_path / 'models' / 'vocabulary.json'}"
        in out
    )


def test_a_relative_store_path_is_resolved_in_a_problem_too(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").write_text("a file where the folder should be")
    monkeypatch.setenv("WHYMOJI_DATABASE_URL", "sqlite:///data/whymoji.sqlite3")
    monkeypatch.setenv("WHYMOJI_MODEL_OFFLINE", "1")
    assert main(["check"]) == 1
    store = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  store:"))
    assert store.startswith("  store: PROBLEM: ")
    assert store.endswith(f"(relative to the folder whymoji runs in: {tmp_path / 'data' / 'whymoji.sqlite3'})")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("[model]\n# café\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 on line 2)"),
        ("[model]\n".encode("utf-16"), "is UTF-16 text"),
        (b"\xef\xbb\xbf[model]\n", "starts with a UTF-8 byte-order mark"),
        (b"\x00\x01\x02\xff", "binary data, not text"),
    ],
    ids=["latin-1", "utf-16", "bom", "binary"],
)
def test_a_config_file_that_is_not_utf8_is_one_problem_line(tmp_path, capsys, data, problem):
    config = tmp_path / "whymoji.toml"
    config.write_bytes(data)
    assert main(["check", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    [line] = problem_lines(captured.out)
    assert line.startswith(f"  config: PROBLEM: config file {config}: ") and problem in line
    assert captured.err == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_device_problem(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setenv("WHYMOJI_MODEL_DEVICE", "cuda")
    config = write_config(tmp_path, model_section(small_model_dir))
    assert main(["check", "--config", str(config)]) == 1
    device_line = next(line for line in capsys.readouterr().out.splitlines() if "device:" in line)
    assert 'PROBLEM: model.device is "cuda"' in device_line and "cpu" in device_line
