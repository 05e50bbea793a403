"""`whymoji check`: validates config and model files, prints the plan, never connects or downloads."""

from __future__ import annotations

import json
import os

import pytest
import torch

from bot.cli import main
from tests.fake_hub import FakeHub


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No token, WHYMOJI_* or Hub settings leak in from the machine running the tests."""
    for name in list(os.environ):
        if name.startswith(("WHYMOJI_", "HF_")) or name == "DISCORD_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.chdir(tmp_path)


def write_config(folder, text: str):
    path = folder / "whymoji.toml"
    path.write_text(text)
    return path


def model_section(model_dir) -> str:
    return (
        f'[model]\nweights = "{model_dir / "pytorch_model.bin"}"\n'
        f'vocabulary = "{model_dir / "vocabulary.json"}"\n'
    )


def test_a_good_deployment_prints_the_plan_and_exits_0(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token-value")
    config = write_config(
        tmp_path,
        model_section(small_model_dir)
        + '[discord]\nshard_count = 4\nshard_ids = [0, 1]\napi_base_url = "http://127.0.0.1:9/api/v10"\n'
        + '[database]\nurl = "postgresql://whymoji:hunter2@db.internal:5432/whymoji"\n'
        + '[health]\nhost = "0.0.0.0"\nport = 9100\n',
    )
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert f"config: {config}" in out
    assert "token: set (from DISCORD_TOKEN)" in out
    assert "shards: 0, 1 of 4 in this process" in out
    assert "REST http://127.0.0.1:9/api/v10" in out
    assert "store: postgresql://whymoji:***@db.internal:5432/whymoji" in out
    assert f"weights {small_model_dir / 'pytorch_model.bin'}" in out
    words = len(json.loads((small_model_dir / "vocabulary.json").read_text()))
    assert f"({words} words, 64 classes)" in out
    assert "health: http://0.0.0.0:9100/healthz and /metrics" in out
    assert "device: cpu" in out
    assert out.rstrip().endswith("all good")
    assert "hunter2" not in out and "secret-token-value" not in out


def test_the_config_path_can_come_from_the_environment(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    config = write_config(tmp_path, model_section(small_model_dir) + "[health]\nenabled = false\n")
    monkeypatch.setenv("WHYMOJI_CONFIG", str(config))
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert f"config: {config}" in out and "health: disabled" in out


def test_every_problem_is_reported_and_the_exit_code_is_1(tmp_path, capsys):
    missing = tmp_path / "nowhere.bin"
    config = write_config(tmp_path, f'[model]\nweights = "{missing}"\n')
    assert main(["check", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    problems = [line for line in out.splitlines() if "PROBLEM" in line]
    assert len(problems) == 2
    assert "token: PROBLEM" in problems[0] and "DISCORD_TOKEN" in problems[0]
    assert "model: PROBLEM" in problems[1] and str(missing) in problems[1]
    assert "2 problems found" in out


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


def test_check_never_downloads_missing_hub_files(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    hub = FakeHub.from_folder(small_model_dir).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.endpoint)
        config = write_config(
            tmp_path, f'[model]\nrepo_id = "{hub.repo_id}"\ncache_dir = "{tmp_path / "cache"}"\n'
        )
        assert main(["check", "--config", str(config)]) == 1
        assert not [path for _, path, _ in hub.requests if "/resolve/" in path or "/cdn/" in path]
    finally:
        hub.stop()
    out = capsys.readouterr().out
    assert "model: PROBLEM" in out and "whymoji download" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_clear_device_problem(tmp_path, small_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setenv("WHYMOJI_MODEL_DEVICE", "cuda")
    config = write_config(tmp_path, model_section(small_model_dir))
    assert main(["check", "--config", str(config)]) == 1
    device_line = next(line for line in capsys.readouterr().out.splitlines() if "device:" in line)
    assert 'PROBLEM: model.device is "cuda"' in device_line and "cpu" in device_line


def test_an_invalid_config_is_one_clear_line(tmp_path, capsys):
    config = write_config(tmp_path, "[reactions]\ntop_k = 0\n")
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "reactions.top_k" in err
