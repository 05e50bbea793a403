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
from bot.deepmoji.emojis import EMOJIS, top_emojis
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
        "--weights",
        str(small_model_dir / "pytorch_model.bin"),
        "--vocabulary",
        str(small_model_dir / "vocabulary.json"),
    ]


@pytest.fixture(scope="module")
def engine(small_model_dir) -> Engine:
    return Engine.load(ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"))


def expected_top(engine: Engine, text: str, k: int) -> list[tuple[int, float]]:
    picks = top_emojis(engine.predict([text])[0], k)
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
            percent, _reaction, name = line.split()
            assert float(percent.rstrip("%")) == pytest.approx(100 * probability, abs=0.051)
            assert name == top_emojis(np.eye(64)[index], 1)[0][0].name


def test_predict_json_has_text_known_words_and_top_emojis(capsys, model_args, engine):
    assert main(["predict", *model_args, "--json", "--top", "4", "omg haha :)"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["text"] == "omg haha :)"
    assert record["known_words"] == engine.read("omg haha :)").known_share == 1.0
    expected = expected_top(engine, "omg haha :)", 4)
    assert [entry["index"] for entry in record["top_emojis"]] == [index for index, _ in expected]
    for entry, (index, probability) in zip(record["top_emojis"], expected):
        assert set(entry) == {"index", "name", "emoji", "probability"}
        assert entry["emoji"] == EMOJIS[index].reaction
        assert entry["probability"] == pytest.approx(probability, rel=1e-6)


def test_predict_and_why_json_speak_one_vocabulary(capsys, model_args):
    text = "i love you so much !!"
    assert main(["predict", *model_args, "--json", text]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert main(["why", *model_args, "--json", text]) == 0
    explained = json.loads(capsys.readouterr().out)
    shared = {"text", "known_words", "top_emojis"}
    assert shared <= set(predicted) and shared <= set(explained)
    assert predicted["text"] == explained["text"] and predicted["known_words"] == explained["known_words"]
    assert [set(entry) for entry in predicted["top_emojis"]] == [set(entry) for entry in explained["top_emojis"]]
    assert [e["index"] for e in predicted["top_emojis"]] == [e["index"] for e in explained["top_emojis"]]


def test_a_text_the_model_mostly_cannot_read_says_so(capsys, model_args):
    assert main(["predict", *model_args, "--top", "1", "love xyzzy plugh quux", "i love you"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  (the model knows only 1 of its 4 words: it learned English, so this guess is weak)"
    assert lines[3] == "i love you" and "knows only" not in lines[4]
    assert main(["predict", *model_args, "--json", "love xyzzy plugh quux"]) == 0
    assert json.loads(capsys.readouterr().out)["known_words"] == 0.25


def test_control_characters_in_the_echoed_text_cannot_drive_the_terminal(capsys, model_args):
    text = "\x1b]0;pwned\x07hello \x1b[2Jworld"
    assert main(["predict", *model_args, "--top", "1", text]) == 0
    echoed = capsys.readouterr().out.splitlines()[0]
    assert echoed == "\ufffd]0;pwned\ufffdhello \ufffd[2Jworld"
    assert main(["predict", *model_args, "--json", text]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == text  # JSON escapes them itself


def test_predict_reads_one_message_per_stdin_line(capsys, model_args, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("i love you\nhate it\r\nwow\n"))
    assert main(["predict", *model_args, "--json", "--top", "1"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["text"] for record in records] == ["i love you", "hate it", "wow"]
    assert all(len(record["top_emojis"]) == 1 for record in records)


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_message_argument_is_one_error_line(capsys, model_args, text):
    assert main(["predict", *model_args, "hello", text]) == 1
    captured = capsys.readouterr()
    assert error_lines(captured.err) == [
        "whymoji: error: message 2 is empty: there are no words or symbols for the model to read"
    ]


def test_blank_stdin_lines_are_skipped_with_a_note_and_the_rest_answered(capsys, model_args, monkeypatch):
    monkeypatch.setattr("bot.cli.predict.CHUNK_SIZE", 2)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a\nb\nc\n\n   \ne\n"))
    assert main(["predict", *model_args, "--json"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["text"] for line in captured.out.splitlines()] == ["a", "b", "c", "e"]
    assert error_lines(captured.err) == [
        "whymoji: note: line 4 is blank: skipped",
        "whymoji: note: line 5 is blank: skipped",
    ]


class TerminalInput:
    """Lines typed at a terminal: before handing out a line, it records how many were answered."""

    def __init__(self, lines: list[str], output: io.StringIO) -> None:
        self.lines = lines
        self.output = output
        self.answered_before: list[int] = []

    def isatty(self) -> bool:
        return True

    def __iter__(self):
        for line in self.lines:
            self.answered_before.append(len(self.output.getvalue().splitlines()))
            yield line


def test_on_a_terminal_each_line_is_answered_before_the_next_is_read(model_args, monkeypatch):
    output = io.StringIO()
    typed = TerminalInput(["i love you\n", "so sad\n", "wow\n"], output)
    monkeypatch.setattr(sys, "stdin", typed)
    monkeypatch.setattr(sys, "stdout", output)
    assert main(["predict", *model_args, "--json"]) == 0
    assert typed.answered_before == [0, 1, 2]
    assert len(output.getvalue().splitlines()) == 3


@pytest.mark.parametrize(("args", "threads"), [([], 1), (["--threads", "2"], 2)])
def test_threads_default_to_one_and_follow_the_option(model_args, monkeypatch, args, threads):
    import torch

    chosen: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    assert main(["predict", *model_args, *args, "hello"]) == 0
    assert chosen == [threads]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--top", "0", "argument --top: must be from 1 to 64, got 0"),
        ("--top", "65", "argument --top: must be from 1 to 64, got 65"),
        ("--top", "many", "argument --top: must be an integer, got 'many'"),
        ("--device", "mps", "argument --device: must be one of cpu, cuda, got 'mps'"),
        ("--device", "CPU", "argument --device: must be one of cpu, cuda, got 'CPU'"),
        ("--threads", "-1", "argument --threads: must be an integer >= 0, got -1"),
        ("--repo-id", "x/y/z", "argument --repo-id: must be a Hub repository id"),
    ],
)
def test_a_bad_option_is_one_usage_error_line(capsys, model_args, option, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", *model_args, option, value, "hello"])
    assert exit_info.value.code == 2
    [line] = error_lines(capsys.readouterr().err)
    assert line.startswith(f"whymoji: error: predict: {message}")
    assert line.endswith("(see `whymoji predict --help`)")


def test_a_missing_weights_file_is_one_error_line(capsys, small_model_dir, tmp_path):
    missing = tmp_path / "missing.bin"
    code = main(
        ["predict", "--weights", str(missing), "--vocabulary", str(small_model_dir / "vocabulary.json"), "hello"]
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


def test_download_fetches_into_the_cache_and_predict_then_works_offline(capsys, hub, tmp_path, small_model_dir):
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
    return subprocess.run([str(script), *args], input=stdin, capture_output=True, text=True, timeout=120, env=environ)


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
