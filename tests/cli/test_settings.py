"""One configuration for every command: the file, then WHYMOJI_<SECTION>_<KEY>, then flags."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli import main

#: Every subcommand, with arguments that would otherwise get it going.
COMMANDS = {
    "predict": ["predict", "hello"],
    "why": ["why", "hello"],
    "download": ["download"],
    "agreement": ["agreement", "messages.txt"],
    "check": ["check"],
    "run": ["run"],
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith(("WHYMOJI_", "HF_")) or name in ("DISCORD_TOKEN", "NO_COLOR"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "messages.txt").write_text("i love you\n")


def model_toml(model_dir: Path) -> str:
    return f'[model]\nweights = "{model_dir / "pytorch_model.bin"}"\nvocabulary = "{model_dir / "vocabulary.json"}"\n'


def error_lines(capsys) -> list[str]:
    """What a command reported: its error lines, or check's PROBLEM lines."""
    captured = capsys.readouterr()
    lines = captured.err.splitlines() + captured.out.splitlines()
    return [line for line in lines if line.startswith("whymoji: error: ") or ": PROBLEM: " in line]


@pytest.mark.parametrize("command", ["predict", "why", "agreement"])
@pytest.mark.parametrize("how", ["--config", "WHYMOJI_CONFIG"])
def test_the_model_commands_read_the_config_file(tmp_path, small_model_dir, monkeypatch, capsys, command, how):
    config = tmp_path / "whymoji.toml"
    config.write_text(model_toml(small_model_dir) + "[reactions]\ntop_k = 2\n")
    argv = COMMANDS[command]
    if how == "--config":
        argv = [*argv, "--config", str(config)]
    else:
        monkeypatch.setenv("WHYMOJI_CONFIG", str(config))
    assert main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().out


def test_the_environment_wins_over_the_file_and_flags_over_both(tmp_path, small_model_dir, monkeypatch, capsys):
    config = tmp_path / "whymoji.toml"
    config.write_text(model_toml(tmp_path / "from-file"))  # no model there
    monkeypatch.setenv("WHYMOJI_CONFIG", str(config))
    assert main(["predict", "hello"]) == 1
    assert f"model.weights: {tmp_path / 'from-file' / 'pytorch_model.bin'} does not exist" in error_lines(capsys)[0]

    monkeypatch.setenv("WHYMOJI_MODEL_WEIGHTS", str(small_model_dir / "pytorch_model.bin"))
    monkeypatch.setenv("WHYMOJI_MODEL_VOCABULARY", str(small_model_dir / "vocabulary.json"))
    assert main(["predict", "--json", "hello"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "hello"

    assert main(["predict", "--weights", "from-flag.bin", "hello"]) == 1
    assert f"model.weights: {tmp_path / 'from-flag.bin'} does not exist" in error_lines(capsys)[0]


def test_max_tokens_and_precision_reach_predict(tmp_path, small_model_dir, monkeypatch, capsys):
    """What the bot computes is what predict computes: the same model settings."""
    monkeypatch.setenv("WHYMOJI_MODEL_MAX_TOKENS", "2")
    monkeypatch.setenv("WHYMOJI_MODEL_PRECISION", "int8")
    model = ["--config", str(tmp_path / "m.toml")]
    (tmp_path / "m.toml").write_text(model_toml(small_model_dir))
    assert main(["predict", *model, "--json", "i love you"]) == 0
    assert json.loads(capsys.readouterr().out)["reading"]["tokens"] == 2
    monkeypatch.setenv("WHYMOJI_MODEL_DEVICE", "cuda")
    assert main(["predict", *model, "hello"]) == 1
    [line] = error_lines(capsys)
    assert 'model.precision: "int8" runs on ONNX Runtime on the CPU only' in line


MISTAKES = [
    ({"WHYMOJI_OFFLINE": "1"}, [], "WHYMOJI_OFFLINE: now WHYMOJI_MODEL_OFFLINE (one name per setting)"),
    ({"WHYMOJI_CACHE_DIR": "/data"}, [], "WHYMOJI_CACHE_DIR: now WHYMOJI_MODEL_CACHE_DIR"),
    ({"WHYMOJI_MODEL_OFFLINE": "maybe"}, [], "WHYMOJI_MODEL_OFFLINE: must be true or false, got 'maybe'"),
    ({"WHYMOJI_REACTOINS_TOP_K": "5"}, [], "did you mean WHYMOJI_REACTIONS_TOP_K?"),
    ({"WHYMOJI_DATABASE_URL": "mysql://db/x"}, [], "WHYMOJI_DATABASE_URL: must be a URL starting with sqlite://"),
    ({}, ["--config", "missing.toml"], "config file missing.toml: not found"),
    ({"WHYMOJI_CONFIG": "missing.toml"}, [], "config file missing.toml: not found"),
]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(("settings", "args", "problem"), MISTAKES, ids=[problem[:30] for *_, problem in MISTAKES])
def test_every_command_refuses_the_same_mistakes(monkeypatch, capsys, command, settings, args, problem):
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    assert main([*COMMANDS[command], *args]) == 1
    lines = error_lines(capsys)
    assert len(lines) == 1 and problem in lines[0], lines


NOT_UTF8 = {
    "latin-1": "[reactions]\ntop_k = 2 # é\n".encode("latin-1"),
    "utf-16": "[reactions]\ntop_k = 2\n".encode("utf-16"),
    "utf-8-bom": b"\xef\xbb\xbf[reactions]\ntop_k = 2\n",
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("encoding", list(NOT_UTF8))
def test_a_config_file_that_is_not_utf8_is_one_line_for_every_command(tmp_path, capsys, command, encoding):
    config = tmp_path / "config.toml"
    config.write_bytes(NOT_UTF8[encoding])
    assert main([*COMMANDS[command], "--config", str(config)]) == 1
    [line] = error_lines(capsys)
    assert f"config file {config}: " in line and ("UTF-8" in line or "binary" in line)


@pytest.fixture
def hub(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return hub


def test_the_images_cache_setting_reaches_download_and_predict(hub, tmp_path, monkeypatch, capsys):
    """The Dockerfile sets WHYMOJI_MODEL_CACHE_DIR: `whymoji download` and `predict` use that cache."""
    cache = tmp_path / "data" / "models"
    monkeypatch.setenv("WHYMOJI_MODEL_CACHE_DIR", str(cache))
    monkeypatch.setenv("WHYMOJI_MODEL_REPO_ID", hub.repo_id)
    assert main(["download"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert all(Path(line.split(":", 1)[1].strip()).is_relative_to(cache) for line in out)

    hub.stop()
    monkeypatch.setenv("WHYMOJI_MODEL_OFFLINE", "true")
    assert main(["predict", "--json", "hello"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "hello"


def test_download_in_offline_mode_names_the_setting(monkeypatch, capsys):
    monkeypatch.setenv("WHYMOJI_MODEL_OFFLINE", "1")
    assert main(["download"]) == 1
    [line] = error_lines(capsys)
    assert "offline mode is on (model.offline)" in line and "WHYMOJI_MODEL_OFFLINE" in line
