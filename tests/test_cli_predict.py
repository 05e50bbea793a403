"""`whymoji predict` and `whymoji download`, driven through bot.cli.main and the console script."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from bot.deepmoji.engine import Engine
from bot.deepmoji.files import ModelFiles

MODEL_ENV = ("WHYMOJI_WEIGHTS", "WHYMOJI_VOCABULARY", "WHYMOJI_OFFLINE", "HF_HUB_OFFLINE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in MODEL_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def model_args(small_model_dir) -> list[str]:
    return [
        "--weights", str(small_model_dir / "pytorch_model.bin"),
        "--vocabulary", str(small_model_dir / "vocabulary.json"),
    ]


@pytest.fixture(scope="module")
def engine(small_model_dir) -> Engine:
    return Engine.load(
        ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json")
    )


def expected_top(engine: Engine, text: str, k: int) -> list[tuple[int, float]]:
    picks = engine.top(engine.predict([text])[0], k)
    return [(emoji.index, p) for emoji, p in picks]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_predict_prints_the_top_emojis_of_each_text(capsys, model_args, engine):
    code = main(["predict", *model_args, "--top", "3", "i love you !!", "so sad"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "i love you !!" and lines[4] == "so sad"
    assert len(lines) == 8
    for block, text in ((lines[1:4], "i love you !!"), (lines[5:8], "so sad")):
        for line, (index, probability) in zip(block, expected_top(engine, text, 3)):
            percent, reaction, name = line.split()
            assert float(percent.rstrip("%")) == pytest.approx(100 * probability, abs=0.051)
            assert name == engine.top(np.eye(64)[index], 1)[0][0].name


def test_predict_json_has_text_and_top_emojis(capsys, model_args, engine):
    assert main(["predict", *model_args, "--json", "--top", "4", "omg haha :)"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["text"] == "omg haha :)"
    assert [entry["index"] for entry in record["top"]] == [
        index for index, _ in expected_top(engine, "omg haha :)", 4)
    ]
    for entry, (_, probability) in zip(record["top"], expected_top(engine, "omg haha :)", 4)):
        assert set(entry) == {"index", "name", "char", "probability"}
        assert entry["probability"] == pytest.approx(probability, rel=1e-6)


def test_predict_reads_one_message_per_stdin_line(capsys, model_args, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("i love you\nhate it\r\nwow\n"))
    assert main(["predict", *model_args, "--json", "--top", "1"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["text"] for record in records] == ["i love you", "hate it", "wow"]
    assert all(len(record["top"]) == 1 for record in records)


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_message_is_one_error_line(capsys, model_args, text):
    assert main(["predict", *model_args, "hello", text]) == 1
    captured = capsys.readouterr()
    assert error_lines(captured.err) == [
        "whymoji: error: message 2 is empty: there are no words or symbols for the model to read"
    ]


def test_an_empty_stdin_line_is_named_by_its_number(capsys, model_args, monkeypatch):
    monkeypatch.setattr("bot.cli.predict.CHUNK_SIZE", 2)  # the blank line is in the second chunk
    monkeypatch.setattr(sys, "stdin", io.StringIO("a\nb\nc\n\ne\n"))
    assert main(["predict", *model_args, "--json"]) == 1
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2, "the first chunk was printed before the error"
    assert error_lines(captured.err) == [
        "whymoji: error: message 4 is empty: there are no words or symbols for the model to read"
    ]


@pytest.mark.parametrize("top", ["0", "65", "-3", "many"])
def test_a_bad_top_count_is_a_usage_error(capsys, model_args, top):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", *model_args, "--top", top, "hello"])
    assert exit_info.value.code == 2
    last = error_lines(capsys.readouterr().err)[-1]
    assert last.startswith("whymoji predict: error: argument --top") and top in last


def test_a_missing_weights_file_is_one_error_line(capsys, small_model_dir, tmp_path):
    missing = tmp_path / "missing.bin"
    code = main(
        ["predict", "--weights", str(missing), "--vocabulary",
         str(small_model_dir / "vocabulary.json"), "hello"]
    )
    assert code == 1
    [line] = error_lines(capsys.readouterr().err)
    assert line.startswith("whymoji: error:") and str(missing) in line


def test_offline_without_cached_files_says_how_to_get_them(capsys, tmp_path):
    code = main(["predict", "--offline", "--cache-dir", str(tmp_path / "empty"), "hello"])
    assert code == 1
    [line] = error_lines(capsys.readouterr().err)
    assert "offline mode is on" in line and "whymoji download" in line


@pytest.fixture
def hub(hub, monkeypatch):
    """The suite's fake Hub, with the CLI's environment pointing at it."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return hub


def test_download_fetches_into_the_cache_and_predict_then_works_offline(
    capsys, hub, tmp_path, small_model_dir
):
    cache = tmp_path / "cache"
    hub_args = ["--repo-id", hub.repo_id, "--cache-dir", str(cache)]
    assert main(["download", *hub_args]) == 0
    out = capsys.readouterr().out.splitlines()
    weights = Path(out[0].removeprefix("weights:").strip())
    vocabulary = Path(out[1].removeprefix("vocabulary:").strip())
    assert weights.is_relative_to(cache) and vocabulary.is_relative_to(cache)
    assert weights.read_bytes() == (small_model_dir / "pytorch_model.bin").read_bytes()

    hub.stop()
    assert main(["predict", "--offline", *hub_args, "--json", "hello world"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "hello world"


def test_download_failure_is_one_error_line(capsys, hub, tmp_path):
    code = main(["download", "--repo-id", "nobody/nothing", "--cache-dir", str(tmp_path)])
    assert code == 1
    [line] = error_lines(capsys.readouterr().err)
    assert "could not get pytorch_model.bin" in line


def run_console_script(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "whymoji"
    environ = {k: v for k, v in os.environ.items() if k not in MODEL_ENV}
    return subprocess.run(
        [str(script), *args], input=stdin, capture_output=True, text=True, timeout=120, env=environ
    )


def test_the_console_script_predicts_from_stdin_and_fails_cleanly(model_args):
    done = run_console_script("predict", *model_args, "--json", stdin="i love you\nhate\n")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["text"] for line in done.stdout.splitlines()] == ["i love you", "hate"]

    failed = run_console_script("predict", *model_args, "  ")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert error_lines(failed.stderr) == [
        "whymoji: error: message 1 is empty: there are no words or symbols for the model to read"
    ]
