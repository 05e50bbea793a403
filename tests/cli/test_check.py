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
        assert main(["check", "--config", str(config), "--no-download"]) == 1
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


@pytest.mark.parametrize(
    ("args", "settings", "problem"),
    [
        ((), {}, None),
        (("--no-download",), {}, "downloads are off"),
        ((), {"WHYMOJI_MODEL_OFFLINE": "1"}, "offline mode is on"),
    ],
)
def test_a_model_not_downloaded_yet_is_a_note_unless_downloads_are_off(
    tmp_path, small_model_dir, monkeypatch, capsys, args, settings, problem
):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    hub = FakeHub.from_folder(small_model_dir).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.endpoint)
        config = write_config(tmp_path, f'[model]\nrepo_id = "{hub.repo_id}"\ncache_dir = "{tmp_path / "cache"}"\n')
        code = main(["check", "--config", str(config), *args])
        assert not [path for _, path, _ in hub.requests if "/resolve/" in path or "/cdn/" in path]
    finally:
        hub.stop()
    model = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  model:"))
    if problem is None:
        assert code == 0
        assert model.startswith("  model: note: not downloaded yet: `whymoji run` will first download ~85 MB")
        assert hub.repo_id in model and str(tmp_path / "cache") in model
    else:
        assert code == 1
        assert model.startswith("  model: PROBLEM:") and problem in model and "whymoji download" in model


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_device_problem(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setenv("WHYMOJI_MODEL_DEVICE", "cuda")
    config = write_config(tmp_path, model_section(small_model_dir))
    assert main(["check", "--config", str(config)]) == 1
    device_line = next(line for line in capsys.readouterr().out.splitlines() if "device:" in line)
    assert 'PROBLEM: model.device is "cuda"' in device_line and "cpu" in device_line
